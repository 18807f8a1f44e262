"""What the study-prep measurement scripts share: the CCPD sample's splits, loaded once."""
import os
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def load_splits():
    """The CCPD sample's splits (cached in $STUDY_PREP_CACHE, default /tmp/study_prep_ccpd.pkl)."""
    cache = os.environ.get("STUDY_PREP_CACHE", "/tmp/study_prep_ccpd.pkl")
    if os.path.exists(cache):
        return pickle.load(open(cache, "rb"))
    from lpsr.data.sources import load_data
    data = os.environ.get("STUDY_PREP_DATA", "ccpd:" + str(Path(__file__).resolve().parents[3] / "shared" / "data" / "ccpd-sample"))
    splits = load_data(data)
    pickle.dump(splits, open(cache, "wb"))
    return splits
