"""Everything only the embedded default uses (no checkpoint, no BLINK snapshot, nothing downloaded):

- `suite/`: the synthetic BLINK-format suite (one generator per task) and the generic pretraining questions;
- `planted.py`: the transfer structure the suite's generators plant (read by the checks only);
- `tiny.py`: tiny random-init models of each family, built from the real transformers classes;
- `pretrain.py`: their pretraining stage, cached: the base model of every embedded cell.
"""
