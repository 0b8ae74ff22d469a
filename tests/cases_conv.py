"""Case-table entries for the convolution primitives and the pooling compositions (see
cases.py). ``make(Case)`` builds them with cases.py's ``Case`` class, which this module
cannot import (cases.py imports it). Shapes are small so the order-2 checks stay fast."""
import numpy as np


def make(Case):
    from autodiff.nn import functional as F
    from autodiff.ops.conv import (conv1d, conv2d, conv2d_grad_w_p, conv2d_transpose_x_p,
                                   conv_transpose2d)
    from autodiff.ops.normalization import standardize
    from autodiff.ops.pooling import max_pool2d, pool_gather_p, pool_scatter_p
    from autodiff.ops.recurrent import gru_cell, gru_sequence, lstm_cell, lstm_sequence

    x, w = ((2, 2, 5, 5), "real"), ((3, 2, 3, 3), "real")
    img = ((2, 2, 6, 7), "real")
    geometry = dict(stride=(2, 1), padding=((1, 1), (2, 2)), dilation=(1, 2))
    return [
        # ----- the fused recurrent cells (autodiff/ops/recurrent.py) -----
        Case("lstm_cell", "lstm_cell", lambda a, c: lstm_cell(a, c),
             (((3, 8), "real"), ((3, 2), "real"))),
        Case("lstm_cell", "lstm_cell-one-state-squared",
             lambda a, c: lstm_cell(a * 2.0, c) ** 2, (((8,), "real"), ((2,), "real"))),
        Case("gru_cell", "gru_cell", lambda xp, hp, h: gru_cell(xp, hp, h),
             (((2, 6), "real"), ((2, 6), "real"), ((2, 2), "real"))),
        Case("gru_cell", "gru_cell-chained",
             lambda xp, hp, h: gru_cell(xp, hp * h[..., :1], gru_cell(xp, hp, h)),
             (((3, 9), "real"), ((3, 9), "real"), ((3, 3), "real"))),
        # Whole sequences (xp (T, batch, k·H), w_hh (k·H, H), states (batch, H)); all rows
        # of the LSTM's output (states and gates) count.
        Case("lstm_sequence", "lstm_sequence", lambda xp, w, h, c: lstm_sequence(xp, w, h, c),
             (((3, 2, 8), "real"), ((8, 2), "unit"), ((2, 2), "real"), ((2, 2), "real"))),
        Case("lstm_sequence", "lstm_sequence-reverse-unbatched",
             lambda xp, w, h, c: lstm_sequence(xp * 2.0, w, h, c, reverse=True) ** 2,
             (((3, 4), "real"), ((4, 1), "unit"), ((1,), "real"), ((1,), "real"))),
        Case("gru_sequence", "gru_sequence",
             lambda xp, w, b, h: gru_sequence(xp, w, b, h),
             (((3, 2, 6), "real"), ((6, 2), "unit"), ((6,), "real"), ((2, 2), "real"))),
        Case("gru_sequence", "gru_sequence-reverse-unbatched",
             lambda xp, w, b, h: gru_sequence(xp, w, b, h, reverse=True) ** 2,
             (((3, 3), "real"), ((3, 1), "unit"), ((3,), "real"), ((1,), "real"))),
        # ----- standardisation (batch and layer norm; autodiff/ops/normalization.py) -----
        Case("standardize", "standardize-batchnorm-axes",
             lambda x: standardize(x, (0, 2, 3), 1e-5), (((3, 2, 2, 2), "real"),)),
        Case("standardize", "standardize-layernorm-times-x",
             lambda x: standardize(x, -1, 0.1) * x, (((3, 4), "real"),)),
        # ----- max pooling and its two linear companions (autodiff/ops/pooling.py) -----
        Case("max_pool2d", "max_pool2d-2x2", lambda x: max_pool2d(x, (2, 2), (2, 2)),
             (((2, 2, 4, 6), "real"),)),
        Case("max_pool2d", "max_pool2d-overlap-pad-dilate-ceil",
             lambda x: max_pool2d(x, (3, 2), (2, 1), (1, 1), (1, 2), True),
             (((1, 2, 5, 6), "real"),)),
        Case("max_pool2d", "max_pool2d-squared-3d", lambda x: max_pool2d(x * x, (2, 2), (1, 2)),
             (((2, 5, 4), "real"),)),
        Case("pool_gather", "pool_gather",
             lambda t: pool_gather_p(t, np.full((4, 1, 2, 2, 3), 0.25), size=(4, 6),
                                     ksize=(2, 2), stride=(2, 2), padding=(0, 0),
                                     dilation=(1, 1), ceil_mode=False),
             (((1, 2, 4, 6), "real"),)),
        Case("pool_scatter", "pool_scatter",
             lambda g: pool_scatter_p(g, np.full((6, 1, 2, 3, 3), 1 / 6), size=(5, 6),
                                      ksize=(3, 2), stride=(2, 2), padding=(1, 0),
                                      dilation=(1, 1), ceil_mode=False),
             (((1, 2, 3, 3), "real"),)),
        # ----- conv2d -----
        Case("conv2d", "conv2d-valid", lambda x, w: conv2d(x, w), (x, w)),
        Case("conv2d", "conv2d-stride2-pad1", lambda x, w: conv2d(x, w, stride=2, padding=1),
             (x, w)),
        Case("conv2d", "conv2d-dilation2-pad2", lambda x, w: conv2d(x, w, padding=2, dilation=2),
             (x, w)),
        Case("conv2d", "conv2d-mixed-pairs",
             lambda x, w: conv2d(x, w, stride=(1, 2), padding=(0, 1), dilation=(2, 1)),
             (((1, 2, 6, 5), "real"), ((2, 2, 2, 3), "real"))),
        Case("conv2d", "conv2d-same-even-kernel", lambda x, w: conv2d(x, w, padding="same"),
             (((1, 2, 4, 4), "real"), ((2, 2, 2, 3), "real"))),
        Case("conv2d", "conv2d-one-image", lambda x, w: conv2d(x, w, padding=1),
             (((2, 4, 4), "real"), ((2, 2, 3, 3), "real"))),
        # A nonlinear composition: second derivatives beyond the bilinear cross terms.
        Case("conv2d", "conv2d-tanh-of-squares",
             lambda x, w: np.tanh(conv2d(x * x, w, stride=2, padding=1) * 0.3),
             (x, w)),
        Case("conv2d", "conv1d", lambda x, w: conv1d(x, w, stride=2, padding=1, dilation=2),
             (((2, 2, 9), "real"), ((3, 2, 3), "real"))),
        Case("conv2d", "conv1d-bias-tanh",
             lambda x, w, b: np.tanh(F.conv1d(x, w, b, padding="same")),
             (((2, 2, 6), "real"), ((2, 2, 3), "real"), ((2,), "real"))),
        # ----- the transpose (cotangent of x), directly and as conv_transpose2d -----
        Case("conv2d_transpose_x", "conv2d_transpose_x",
             lambda g, w: conv2d_transpose_x_p(g, w, size=(6, 7), **geometry),
             (((2, 3, 3, 7), "real"), w)),
        Case("conv2d_transpose_x", "conv_transpose2d-stride2-outpad1",
             lambda x, w: conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
             (((2, 3, 3, 3), "real"), ((3, 2, 3, 3), "real"))),
        Case("conv2d_transpose_x", "conv_transpose2d-dilated-squared",
             lambda x, w: conv_transpose2d(x * x, w, dilation=2) ** 2,
             (((1, 3, 2, 3), "real"), ((3, 2, 2, 2), "real"))),
        # ----- the correlation of x with g (cotangent of w) -----
        Case("conv2d_grad_w", "conv2d_grad_w",
             lambda x, g: conv2d_grad_w_p(x, g, ksize=(3, 3), **geometry),
             (img, ((2, 3, 3, 7), "real"))),
        Case("conv2d_grad_w", "conv2d_grad_w-valid-squared",
             lambda x, g: conv2d_grad_w_p(x, g, ksize=(2, 2), stride=(1, 1),
                                          padding=((0, 0), (0, 0)), dilation=(1, 1)) ** 2,
             (((1, 2, 4, 4), "real"), ((1, 2, 3, 3), "real"))),
        # ----- pooling: compositions of slicing, concatenate and max / sum -----
        Case("max", "max_pool2d-2", lambda x: F.max_pool2d(x, 2), (((2, 2, 4, 5), "real"),)),
        Case("max", "max_pool2d-3-stride2-pad1",
             lambda x: F.max_pool2d(x, 3, stride=2, padding=1), (((1, 2, 5, 6), "real"),)),
        Case("max", "max_pool2d-overlap-dilation-ceil",
             lambda x: F.max_pool2d(x, 2, stride=1, dilation=2, ceil_mode=True) ** 2,
             (((1, 2, 5, 5), "real"),)),
        Case("max", "max_pool1d-ceil",
             lambda x: F.max_pool1d(x, 3, stride=2, padding=1, ceil_mode=True),
             (((2, 2, 8), "real"),)),
        Case("sum", "avg_pool2d-2", lambda x: F.avg_pool2d(x, 2) ** 2, (((2, 2, 4, 4), "real"),)),
        Case("sum", "avg_pool2d-3-stride2-pad1-ceil-nopad",
             lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True,
                                    count_include_pad=False),
             (((1, 2, 6, 5), "real"),)),
        Case("sum", "avg_pool1d", lambda x: np.sin(F.avg_pool1d(x, 2, stride=1)),
             (((2, 3, 5), "real"),)),
    ]
