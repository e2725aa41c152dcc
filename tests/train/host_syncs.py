"""What would make a CUDA step wait for the device, seen on a CPU: a dispatch mode that records every aten
operation, and the operations that read a value back or make a shape that depends on the data."""

from torch.utils._python_dispatch import TorchDispatchMode

HOST_SYNCS = {"_local_scalar_dense", "nonzero", "masked_select", "unique_dim", "_unique2", "is_nonzero", "equal",
              "item", "masked_scatter", "repeat_interleave"}


class OpRecorder(TorchDispatchMode):
    """`with OpRecorder() as recorder: ...` leaves the names of the aten operations dispatched in `recorder.ops`."""

    def __init__(self):
        super().__init__()
        self.ops = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func._schema.name.split("::")[-1])
        return func(*args, **(kwargs or {}))
