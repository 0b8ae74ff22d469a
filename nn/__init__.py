"""``autodiff.nn``: neural networks on the reverse mode, with PyTorch's habits.

>>> import numpy as np
>>> from autodiff import nn
>>> model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
>>> loss = nn.functional.mse_loss(model(np.ones((4, 3))), np.zeros((4, 1)))
>>> loss.backward()
>>> model[0].weight.grad.shape
(8, 3)
"""
from . import callbacks, functional, init, optim, utils
from .attention import MultiheadAttention
from .compile import compile_step
from .conv import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, Conv1d, Conv2d,
                   ConvTranspose1d, ConvTranspose2d, MaxPool1d, MaxPool2d, Upsample)
from .conv import (AdaptiveAvgPool3d, AdaptiveMaxPool3d, AvgPool3d, Conv3d, ConvTranspose3d,
                   MaxPool3d)
from .conv import (AdaptiveMaxPool1d, AdaptiveMaxPool2d, Fold, MaxUnpool1d, MaxUnpool2d,
                   PixelShuffle, PixelUnshuffle, Unfold, UpsamplingBilinear2d,
                   UpsamplingNearest2d)
from .data import (BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset,
                   RandomSampler, Sampler, SequentialSampler, Subset, SubsetRandomSampler,
                   TensorDataset, WeightedRandomSampler, default_collate, random_split)
from .fit import (Callback, CSVLogger, EarlyStopping, History, LambdaCallback,
                  LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN,
                  evaluate, fit, predict)
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .io import load, load_metadata, save
from .layers import (CELU, ELU, GELU, GLU, SELU, CosineSimilarity, Dropout, Embedding, Flatten,
                     Hardshrink, Hardsigmoid, Hardswish, Hardtanh, Identity, LayerNorm,
                     LeakyReLU, Linear, LogSigmoid, LogSoftmax, Mish, PairwiseDistance, PReLU,
                     ReLU, ReLU6, RReLU, Sigmoid, SiLU, Softmax, Softmin, Softplus, Softshrink,
                     Softsign, Tanh, Tanhshrink, Threshold, Unflatten)
from .layers import (AlphaDropout, Bilinear, ChannelShuffle, Dropout1d, Dropout2d, Dropout3d,
                     EmbeddingBag, FeatureAlphaDropout, LocalResponseNorm, Softmax2d)
from .loss import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CrossEntropyLoss,
                   CTCLoss, GaussianNLLLoss, HingeEmbeddingLoss, HuberLoss, KLDivLoss, L1Loss,
                   MarginRankingLoss, MSELoss, MultiLabelMarginLoss, MultiLabelSoftMarginLoss,
                   MultiMarginLoss, NLLLoss, PoissonNLLLoss, SmoothL1Loss, SoftMarginLoss,
                   TripletMarginLoss, TripletMarginWithDistanceLoss)
from .module import (Module, ModuleDict, ModuleList, Parameter, ParameterDict, ParameterList,
                     Sequential, functional_call)
from .norm import (BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm1d,
                   InstanceNorm2d, InstanceNorm3d, RMSNorm)
from .onnx import export_onnx
from .optim import clip_grad_norm_, clip_grad_value_
from .padding import (ZeroPad1d, ZeroPad2d, ZeroPad3d, ConstantPad1d, ConstantPad2d,
                      ConstantPad3d, ReflectionPad1d, ReflectionPad2d, ReflectionPad3d,
                      ReplicationPad1d, ReplicationPad2d, ReplicationPad3d, CircularPad1d,
                      CircularPad2d, CircularPad3d)
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .transformer import (Transformer, TransformerDecoder, TransformerDecoderLayer,
                          TransformerEncoder, TransformerEncoderLayer)

__all__ = [
    # modules
    "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
    "ParameterDict", "functional_call", "compile_step",
    # layers
    "Linear", "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "MaxPool1d",
    "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "Upsample", "Flatten", "Unflatten", "Dropout", "Identity", "Embedding", "LayerNorm",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "MaxUnpool1d", "MaxUnpool2d", "Unfold", "Fold",
    "PixelShuffle", "PixelUnshuffle", "UpsamplingNearest2d", "UpsamplingBilinear2d",
    "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "Bilinear",
    "Softmax2d", "ChannelShuffle", "LocalResponseNorm", "EmbeddingBag",
    "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
    "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d",
    "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d",
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm", "InstanceNorm1d",
    "InstanceNorm2d", "InstanceNorm3d", "RMSNorm", "Conv3d", "ConvTranspose3d", "MaxPool3d",
    "AvgPool3d", "AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell",
    "GRUCell",
    "MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer",
    "TransformerEncoder", "TransformerDecoder", "Transformer",
    # activations
    "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Mish", "Hardtanh", "ReLU6", "Tanh", "Sigmoid",
    "Softplus", "Softmax", "LogSoftmax", "SELU", "CELU", "LogSigmoid", "Hardswish",
    "Hardsigmoid", "Softsign", "Softmin", "GLU", "Threshold", "Tanhshrink", "Softshrink",
    "Hardshrink", "PReLU", "RReLU", "CosineSimilarity", "PairwiseDistance",
    # losses
    "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss",
    "HuberLoss", "SmoothL1Loss", "KLDivLoss", "CosineEmbeddingLoss", "MarginRankingLoss",
    "HingeEmbeddingLoss", "PoissonNLLLoss", "GaussianNLLLoss", "TripletMarginLoss",
    "SoftMarginLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss", "MultiLabelMarginLoss",
    "TripletMarginWithDistanceLoss", "CTCLoss",
    # functions, initialisation, optimisation, data, training, files
    "functional", "init", "optim", "clip_grad_norm_", "clip_grad_value_", "utils",
    "DataLoader", "TensorDataset", "Dataset", "IterableDataset", "Subset", "ConcatDataset",
    "random_split", "default_collate", "Sampler", "SequentialSampler", "RandomSampler",
    "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler",
    "fit", "predict", "evaluate", "History", "callbacks", "Callback", "EarlyStopping",
    "ModelCheckpoint", "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger",
    "TerminateOnNaN", "LambdaCallback", "save", "load", "load_metadata", "export_onnx",
    # grad mode
    "no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
]
