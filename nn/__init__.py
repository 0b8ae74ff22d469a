"""``autodiff.nn``: neural networks on the reverse mode, with PyTorch's habits.

>>> import numpy as np
>>> from autodiff import nn
>>> model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
>>> loss = nn.functional.mse_loss(model(np.ones((4, 3))), np.zeros((4, 1)))
>>> loss.backward()
>>> model[0].weight.grad.shape
(8, 3)
"""
from . import callbacks, functional, init, optim
from .compile import compile_step
from .conv import AvgPool1d, AvgPool2d, Conv1d, Conv2d, MaxPool1d, MaxPool2d
from .data import DataLoader, TensorDataset
from .fit import (Callback, CSVLogger, EarlyStopping, History, LambdaCallback,
                  LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN,
                  evaluate, fit, predict)
from .io import load, load_metadata, save
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
    "Module", "Parameter", "Sequential", "ModuleList", "functional_call", "compile_step",
    # layers
    "Linear", "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
    "Flatten", "Dropout", "Identity", "Embedding", "LayerNorm", "BatchNorm1d", "BatchNorm2d",
    "RNN", "LSTM", "GRU",
    # activations
    "ReLU", "LeakyReLU", "ELU", "GELU", "Tanh", "Sigmoid", "Softplus", "Softmax", "LogSoftmax",
    # functions, initialisation, optimisation, data, training, files
    "functional", "init", "optim", "clip_grad_norm_", "clip_grad_value_", "utils",
    "DataLoader", "TensorDataset",
    "fit", "predict", "evaluate", "History", "callbacks", "Callback", "EarlyStopping",
    "ModelCheckpoint", "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger",
    "TerminateOnNaN", "LambdaCallback", "save", "load", "load_metadata", "export_onnx",
]
