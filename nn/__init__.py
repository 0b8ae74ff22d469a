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
from .data import DataLoader, TensorDataset
from .io import load, save
from .layers import (ELU, GELU, Dropout, Embedding, Flatten, Identity, LayerNorm, LeakyReLU,
                     Linear, LogSoftmax, ReLU, Sigmoid, Softmax, Softplus, Tanh)
from .module import Module, ModuleList, Parameter, Sequential, functional_call
from .optim import clip_grad_norm_


class utils:  # noqa: N801 - PyTorch's torch.nn.utils.clip_grad_norm_
    clip_grad_norm_ = staticmethod(clip_grad_norm_)


__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "functional_call", "Linear",
           "Flatten", "Dropout", "Identity", "Embedding", "LayerNorm", "ReLU", "LeakyReLU",
           "ELU", "GELU", "Tanh", "Sigmoid", "Softplus", "Softmax", "LogSoftmax", "functional",
           "init", "optim", "DataLoader", "TensorDataset", "save", "load", "clip_grad_norm_",
           "utils"]
