"""``nn.utils`` (PyTorch's ``torch.nn.utils``): gradient clipping, the parameters as one
vector and back, and ``nn.utils.rnn``'s padding of variable-length sequences."""
import numpy as np

from autodiff.boxes import unbox

from ..grad_mode import no_grad
from ..optim.clip import clip_grad_norm_, clip_grad_value_
from ..optim.optimizer import _param_list
from . import rnn

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters", "rnn"]


def parameters_to_vector(parameters):
    """All parameters flattened and concatenated, in order: a tracked vector whose
    derivative flows back to each parameter (PyTorch's ``cat([p.view(-1) ...])``)."""
    params = _param_list(parameters, "parameters_to_vector")
    return np.concatenate([np.reshape(p, -1) for p in params])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-d ``vec`` into the parameters (in place, recording
    nothing, as PyTorch's, which writes ``param.data``)."""
    v = np.asarray(unbox(vec))
    if v.ndim != 1:
        raise TypeError(f"expected a 1-d vector, but got an array of {v.ndim} dimensions")
    params = _param_list(parameters, "vector_to_parameters")
    total = sum(p.size for p in params)
    if v.size != total:
        raise RuntimeError(f"vector_to_parameters: the vector has {v.size} entries, the "
                           f"parameters {total}")
    start = 0
    with no_grad():
        for p in params:
            p.copy_(v[start:start + p.size].reshape(p.shape))
            start += p.size
