"""CCPD-shaped folders made of the sample's photos by hard links (never copies), for tests and
benchmarks of CCPD's own layout.

- :func:`ccpd2019_tree`: CCPD2019's layout: ``ccpd_base/`` (train, val and test plates,
  listed in ``splits/{train,val,test}.txt``), ``ccpd_<subset>/`` test subsets listed in
  ``splits/ccpd_<subset>.txt`` (``blur``, ``db``, ``fn``, ``rotate``, ``tilt``,
  ``challenge``), ``ccpd_weather/`` listed nowhere, and ``ccpd_np/`` (photos without a plate
  annotation); the sample's blue plates, each split of the sample feeding the same split here
  (so one car stays in one split).
- :func:`ccpd2020_tree`: CCPD2020's layout: ``ccpd_green/{train,val,test}/``, the sample's
  green plates, no split lists.

    python benchmarks/ccpd_tree.py 2019 /tmp/ccpd2019
    python benchmarks/ccpd_tree.py 2020 /tmp/ccpd2020 [--sample PATH]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "ccpd-sample"
#: CCPD2019's test subsets with their own split list, and the one CCPD ships without a list
LISTED_TEST_SUBSETS = ("blur", "db", "fn", "rotate", "tilt", "challenge")
UNLISTED_TEST_SUBSET = "weather"
SPLITS = ("train", "val", "test")


def sample_photos(sample: Path, split: str, chars: int) -> list[str]:
    """The sample's photos of one split (relative paths) whose plate has ``chars`` characters
    (7: blue CCPD2019 plates, 8: green CCPD2020 ones), in list order."""
    listed = (sample / "splits" / f"{split}.txt").read_text(encoding="utf-8").split()
    return [rel for rel in listed if len(Path(rel).stem.split("-")[4].split("_")) == chars]


def _link(sample: Path, rel: str, dest: Path) -> str:
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.link(sample / rel, dest)
    return dest.name


def ccpd2019_tree(sample: Path, root: Path, n_train: int = 40, n_val: int = 8, per_test_subset: int = 4, n_no_plate: int = 2) -> Path:
    """A CCPD2019-shaped tree at ``root`` (see the module docstring); returns ``root``.
    ``ccpd_base`` gets ``n_train``/``n_val`` plates and ``per_test_subset`` test plates, as
    does every other test subset; ``ccpd_np`` ``n_no_plate`` photos."""
    (root / "splits").mkdir(parents=True)
    train, val, test = (sample_photos(sample, s, 7) for s in SPLITS)
    need = per_test_subset * (2 + len(LISTED_TEST_SUBSETS))
    if len(train) < n_train + n_no_plate or len(val) < n_val or len(test) < need:
        raise ValueError(f"the sample at {sample} has too few blue plates for this tree")
    lists: dict[str, list[str]] = {}
    for split, photos in (("train", train[:n_train]), ("val", val[:n_val]), ("test", test[:per_test_subset])):
        lists[split] = [f"ccpd_base/{_link(sample, rel, root / 'ccpd_base' / Path(rel).name)}" for rel in photos]
    rest = test[per_test_subset:]
    for k, subset in enumerate((*LISTED_TEST_SUBSETS, UNLISTED_TEST_SUBSET)):
        photos = rest[k * per_test_subset:(k + 1) * per_test_subset]
        names = [f"ccpd_{subset}/{_link(sample, rel, root / f'ccpd_{subset}' / Path(rel).name)}" for rel in photos]
        if subset != UNLISTED_TEST_SUBSET:
            lists[f"ccpd_{subset}"] = names
    for k, rel in enumerate(train[n_train:n_train + n_no_plate]):  # ccpd_np's names carry no annotation
        _link(sample, rel, root / "ccpd_np" / f"{k + 1:04d}.jpg")
    for name, entries in lists.items():
        (root / "splits" / f"{name}.txt").write_text("\n".join(entries) + "\n", encoding="utf-8")
    return root


def ccpd2020_tree(sample: Path, root: Path, counts: tuple[int, int, int] = (24, 6, 6)) -> Path:
    """A CCPD2020-shaped tree (``ccpd_green/{train,val,test}/``, no split lists) at ``root``."""
    for split, n in zip(SPLITS, counts):
        photos = sample_photos(sample, split, 8)
        if len(photos) < n:
            raise ValueError(f"the sample at {sample} has {len(photos)} green plates in {split}, fewer than {n}")
        for rel in photos[:n]:
            _link(sample, rel, root / "ccpd_green" / split / Path(rel).name)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("layout", choices=["2019", "2020"])
    ap.add_argument("dest", type=Path, help="a folder that does not exist yet (on the sample's file system: hard links)")
    ap.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    args = ap.parse_args()
    if args.dest.exists():
        ap.error(f"{args.dest} exists; give a new folder")
    made = (ccpd2019_tree if args.layout == "2019" else ccpd2020_tree)(args.sample, args.dest)
    print(f"CCPD{args.layout}-shaped tree at {made}")


if __name__ == "__main__":
    main()
