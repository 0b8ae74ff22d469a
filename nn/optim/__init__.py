"""``nn.optim``: SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, NAdam, RAdam, Adadelta, Rprop
and ASGD with PyTorch's update formulas, their
parameter groups and state dicts, ``nn.optim.lr_scheduler``, ``clip_grad_norm_`` and
``clip_grad_value_``. Updates run off the tape, in place on the parameters' values, from
their ``.grad``.

>>> import numpy as np
>>> from autodiff import nn
>>> model = nn.Linear(3, 1)
>>> opt = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
>>> sched = nn.optim.lr_scheduler.StepLR(opt, step_size=10)
>>> sorted(opt.state_dict())
['param_groups', 'state']
"""
from . import lr_scheduler
from .algorithms import (ASGD, SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, NAdam, RAdam,
                         RMSprop, Rprop)
from .clip import clip_grad_norm_, clip_grad_value_
from .optimizer import Optimizer

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam",
           "RAdam", "Adadelta", "Rprop", "ASGD", "lr_scheduler",
           "clip_grad_norm_", "clip_grad_value_"]
