"""``autodiff.nn``: neural networks on the reverse mode, with PyTorch's habits.

>>> import numpy as np
>>> from autodiff import nn
>>> model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
>>> loss = nn.functional.mse_loss(model(np.ones((4, 3))), np.zeros((4, 1)))
>>> loss.backward()
>>> model[0].weight.grad.shape
(8, 3)
"""
from . import functional, init, optim
from .conv import AvgPool1d, AvgPool2d, Conv1d, Conv2d, MaxPool1d, MaxPool2d
from .data import DataLoader, TensorDataset
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .fit import (Callback, EarlyStopping, History, LearningRateScheduler, ModelCheckpoint,
                  evaluate, fit, predict)
from .io import load, save
from .layers import (ELU, GELU, Dropout, Embedding, Flatten, Identity, LayerNorm, LeakyReLU,
                     Linear, LogSoftmax, ReLU, Sigmoid, Softmax, Softplus, Tanh)
from .module import Module, ModuleList, Parameter, Sequential, functional_call
from .norm import BatchNorm1d, BatchNorm2d
from .onnx import export_onnx
from .optim import clip_grad_norm_, clip_grad_value_
from .recurrent import GRU, LSTM, RNN


class utils:  # noqa: N801 - PyTorch's torch.nn.utils.clip_grad_norm_ / clip_grad_value_
    clip_grad_norm_ = staticmethod(clip_grad_norm_)
    clip_grad_value_ = staticmethod(clip_grad_value_)


__all__ = [
    # modules
    "Module", "Parameter", "Sequential", "ModuleList", "functional_call",
    # layers
    "Linear", "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
    "Flatten", "Dropout", "Identity", "Embedding", "LayerNorm", "BatchNorm1d", "BatchNorm2d",
    "RNN", "LSTM", "GRU",
    # activations
    "ReLU", "LeakyReLU", "ELU", "GELU", "Tanh", "Sigmoid", "Softplus", "Softmax", "LogSoftmax",
    # functions, initialisation, optimisation, data, training, files
    "functional", "init", "optim", "clip_grad_norm_", "clip_grad_value_", "utils",
    "DataLoader", "TensorDataset",
    "fit", "predict", "evaluate", "History", "Callback", "EarlyStopping", "ModelCheckpoint",
    "LearningRateScheduler", "save", "load", "export_onnx",
    # grad mode
    "no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
]
