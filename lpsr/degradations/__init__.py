"""Named degradations HR -> LR (issue 21): presets in ``configs/degradations/*.yaml``.

    deg = get_degradation("camera")            # or a path to a preset YAML
    lr = deg.apply(hr, 8, key=plate.id)          # test LR: same bytes for the same plate
    lr = deg.apply(hr, 8, key=training_generator(seed, rank, k))   # training LR
    deg.describe()                               # name, every parameter, fingerprint

See docs/degradations.md.
"""
from lpsr.degradations.degradation import DEFAULT_DEGRADATION, Degradation, recorded_degradation
from lpsr.degradations.keys import plate_generator, training_generator
from lpsr.degradations.lookup import default_degradation, degradation_from_record, get_degradation, known_degradations

__all__ = ["DEFAULT_DEGRADATION", "Degradation", "default_degradation", "degradation_from_record", "get_degradation", "known_degradations", "recorded_degradation", "plate_generator", "training_generator"]
