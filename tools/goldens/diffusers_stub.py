"""Load diffusers' own scheduler modules without installing diffusers.

diffusers cannot be installed here (no PyPI), but its scheduler files need
little beyond torch and numpy. load(names) copies the named files,
src/diffusers/schedulers/scheduling_<name>.py, from a diffusers git
checkout (default: the mirror that the fetch tool writes,
/work/.mirror/huggingface+diffusers/repo, at HEAD; override with
DIFFUSERS_GIT and DIFFUSERS_REV) into a temporary package, next to a
minimal stand-in for the few pieces of diffusers they import: ConfigMixin
and register_to_config (the init arguments, defaults included, become
self.config), BaseOutput, SchedulerOutput, SchedulerMixin, deprecate,
is_scipy_available, logging and randn_tensor. The stand-in is written here
from what the scheduler files use; the scheduler code itself runs
unmodified.
"""
import functools
import importlib
import inspect
import os
import subprocess
import sys
import tempfile

GIT = os.environ.get("DIFFUSERS_GIT", "/work/.mirror/huggingface+diffusers/repo")
REV = os.environ.get("DIFFUSERS_REV", "HEAD")

CONFIGURATION_UTILS = '''
import functools, inspect

class FrozenDict(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)

class ConfigMixin:
    config_name = "scheduler_config.json"

    def register_to_config(self, **kwargs):
        cfg = dict(getattr(self, "_internal_dict", {}))
        cfg.update(kwargs)
        self._internal_dict = FrozenDict(cfg)

    @property
    def config(self):
        return self._internal_dict

    @classmethod
    def from_config(cls, config, **kwargs):
        params = inspect.signature(cls.__init__).parameters
        args = {k: v for k, v in dict(config).items() if k in params and k != "self"}
        args.update(kwargs)
        return cls(**args)

def register_to_config(init):
    @functools.wraps(init)
    def inner(self, *args, **kwargs):
        sig = inspect.signature(init)
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        cfg = {k: v for k, v in bound.arguments.items() if k != "self"}
        ConfigMixin.register_to_config(self, **cfg)
        init(self, *args, **kwargs)
    return inner
'''

UTILS = '''
import logging as _logging
import warnings

class BaseOutput:
    def __getitem__(self, i):
        return list(vars(self).values())[i]

def deprecate(*args, standard_warn=True, stacklevel=2, **kwargs):
    pass

def is_scipy_available():
    try:
        import scipy  # noqa: F401
        return True
    except ImportError:
        return False

class logging:
    @staticmethod
    def get_logger(name):
        return _logging.getLogger(name)
'''

TORCH_UTILS = '''
import torch

def randn_tensor(shape, generator=None, device=None, dtype=None, layout=None):
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)
'''

SCHEDULING_UTILS = '''
from dataclasses import dataclass
from enum import Enum
import torch
from ..utils import BaseOutput

class KarrasDiffusionSchedulers(Enum):
    DDIMScheduler = 1
    DDPMScheduler = 2
    PNDMScheduler = 3
    LMSDiscreteScheduler = 4
    EulerDiscreteScheduler = 5
    HeunDiscreteScheduler = 6
    EulerAncestralDiscreteScheduler = 7
    DPMSolverMultistepScheduler = 8
    DPMSolverSinglestepScheduler = 9
    KDPM2DiscreteScheduler = 10
    KDPM2AncestralDiscreteScheduler = 11
    DEISMultistepScheduler = 12
    UniPCMultistepScheduler = 13
    DPMSolverSDEScheduler = 14
    EDMEulerScheduler = 15

@dataclass
class SchedulerOutput(BaseOutput):
    prev_sample: torch.Tensor

class SchedulerMixin:
    config_name = "scheduler_config.json"
    _compatibles = []
    has_compatibles = True
'''


def rev():
    """The commit of the diffusers sources used."""
    return subprocess.run(["git", "-C", GIT, "rev-parse", REV], check=True, capture_output=True, text=True).stdout.strip()


def show(path):
    """The text of the file path of the diffusers checkout at REV."""
    return subprocess.run(["git", "-C", GIT, "show", f"{REV}:{path}"], check=True, capture_output=True, text=True).stdout


def load(*names):
    """Returns the modules diffusers.schedulers.scheduling_<name>."""
    root = tempfile.mkdtemp(prefix="diffusers_stub_")
    pkg = os.path.join(root, "diffusers")
    os.makedirs(os.path.join(pkg, "utils"))
    os.makedirs(os.path.join(pkg, "schedulers"))
    files = {
        "__init__.py": "",
        "configuration_utils.py": CONFIGURATION_UTILS,
        "utils/__init__.py": UTILS,
        "utils/torch_utils.py": TORCH_UTILS,
        "schedulers/__init__.py": "",
        "schedulers/scheduling_utils.py": SCHEDULING_UTILS,
    }
    for name in names:
        src = subprocess.run(
            ["git", "-C", GIT, "show", f"{REV}:src/diffusers/schedulers/scheduling_{name}.py"],
            check=True, capture_output=True, text=True).stdout
        files[f"schedulers/scheduling_{name}.py"] = src
    for path, text in files.items():
        with open(os.path.join(pkg, path), "w") as f:
            f.write(text)
    sys.path.insert(0, root)
    return [importlib.import_module(f"diffusers.schedulers.scheduling_{n}") for n in names]
