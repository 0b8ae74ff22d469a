"""``nn.utils.rnn`` (PyTorch's ``torch.nn.utils.rnn``): a batch of variable-length
sequences padded to one array, and split back. (Packed sequences are not supported: pad
the batch and mask, or run the sequences one by one.)"""
import numpy as np

from autodiff.boxes import unbox
from autodiff.core import shape_of

__all__ = ["pad_sequence", "unpad_sequence"]


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Sequences of shapes (L_i, *) stacked into (L_max, B, *) (``batch_first``: (B, L_max,
    *)), each padded with ``padding_value`` after its end (``padding_side='left'``: before
    its start); differentiable in the sequences."""
    if padding_side not in ("right", "left"):
        raise ValueError(f"Expected padding_side to be one of left or right, but got "
                         f"{padding_side}.")
    seqs = list(sequences)
    if not seqs:
        raise RuntimeError("received an empty list of sequences")
    longest = max(shape_of(s)[0] for s in seqs)
    rows = []
    for s in seqs:
        short = longest - shape_of(s)[0]
        pads = [(short, 0) if padding_side == "left" else (0, short)]
        rows.append(np.pad(s, pads + [(0, 0)] * (len(shape_of(s)) - 1),
                           constant_values=padding_value))
    return np.stack(rows, axis=0 if batch_first else 1)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of sequences ``pad_sequence`` padded: the first ``lengths[b]`` steps of each
    batch entry."""
    x = padded_sequences if batch_first else np.swapaxes(padded_sequences, 0, 1)
    return [x[b, :int(n)] for b, n in enumerate(np.asarray(unbox(lengths)).reshape(-1))]
