"""Training: a small generic loop with callbacks, run as ``python -m lsx train`` (or in a subprocess
started by the app), or as ``torchrun --nproc-per-node=N -m lsx train`` for distributed
data-parallel training. One run folder holds everything needed to continue bit-for-bit.

Guarantees:
- every file in the run folder is written atomically; ``model.safetensors`` always loads;
- ``train_state.pt`` (lsx-written; model, optimiser, RNG, position) lets ``--resume`` continue
  from the exact step, also after SIGTERM/Ctrl-C in the middle of an epoch;
- ``config.json``, ``model.safetensors`` and ``train_state.pt`` are written when training starts
  (status "running"), so a run that fails before its first epoch ends can be inspected and resumed;
- a non-finite loss or gradient skips the step; after ``max_bad_steps`` in a row the last good
  state is restored and the learning rate halved once; if it happens again, training aborts with a
  message that names the checkpoint the run folder keeps (it stays untouched);
- ``--resume`` with changed settings applies them (``lr`` and ``weight_decay`` into the restored
  optimiser) and records them (``resumed_with`` in the next epoch's metrics record), or refuses
  the ones it cannot honour (:mod:`lsx.train.faults`); ``config.json`` never records a value
  that is not used;
- a full disk (or a file-size limit) ends with a message naming the free space, status "failed"
  and nothing half-written (every write is atomic);
- one job per run folder (:class:`lsx.files.FolderLock` on ``.lock``, which holds the PID; the
  kernel releases it when the trainer dies, so no stale lock is left behind).

Data: a :class:`~lsx.data.base.Dataset` is kept whole on the training device; a lazy
:class:`~lsx.data.lazy.ImageSource` (``npy:``, a lazy folder) is read batch by batch through a
torch DataLoader (``TrainConfig.workers`` processes), never whole.

Distributed (torchrun; :mod:`lsx.distributed`): ``batch_size`` is the global batch. Every rank
walks the same per-epoch permutation (a function of seed and epoch, as DistributedSampler with
``set_epoch``) and takes its contiguous share of each global batch; its loss is weighted by
``n_local * world_size / n_batch`` so that DDP's gradient average equals the gradient of the
global-batch mean, also for the last, smaller batch (a rank whose share is empty runs one sample
with weight 0). For kinds whose loss is a per-sample mean and draws no noise (``ae``) a run on N
processes therefore matches the run on one up to float rounding; noisy kinds (``vae``, ``dae``)
draw independent noise per rank. Only rank 0 writes files; metric sums, sample counts and the
test loss are summed over ranks; stop requests and non-finite steps are agreed at every step.

GPU path: no host-device synchronisation per step beyond one flag (finite step? stop?); metric
sums stay on the device and are read once per epoch (and at most once a second for the status
line). ``precision="bf16"`` autocasts the model's networks, ``compile`` wraps the training step
in ``torch.compile``.

Modules: :mod:`~lsx.train.trainer` (:class:`Trainer`), :mod:`~lsx.train.feeds` (run data records,
batches, each rank's share, the memory and lazy feeds, evaluation), :mod:`~lsx.train.device`
(device, autocast, matmul precision), :mod:`~lsx.train.control` (stop signals, the run lock, the
result), :mod:`~lsx.train.faults` (resume rules, disk-full and failure messages).
``python -m lsx.train ...`` is ``python -m lsx train ...`` (:mod:`lsx.train.__main__`).
"""

from lsx.train.control import FitResult, run_lock
from lsx.train.device import autocast_networks, resolve_device
from lsx.train.feeds import EVAL_CHUNK, data_info, label_matrix, shard
from lsx.train.trainer import Callback, Trainer

__all__ = [
    "EVAL_CHUNK",
    "Callback",
    "FitResult",
    "Trainer",
    "autocast_networks",
    "data_info",
    "label_matrix",
    "resolve_device",
    "run_lock",
    "shard",
]
