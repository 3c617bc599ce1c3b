"""Helpers on torch modules shared by the model-reading code."""

import contextlib


@contextlib.contextmanager
def eval_mode(*modules):
    """Run a block with ``modules`` in eval mode, then restore every mode.

    Dropout is off and batch norm uses its running statistics inside the block.
    On exit each module *and submodule* gets back the mode it had on entry (a
    submodule kept in eval mode inside a training network stays so), also when
    the block raises.

    Parameters
    ----------
    *modules : torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    >>> with eval_mode(net):
    ...     net.training
    False
    >>> net.training
    True
    """
    modes = [[(m, m.training) for m in module.modules()] for module in modules]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for module, module_modes in zip(modules, modes):
            module.train(module_modes[0][1])  # as before the block, overrides too
            for m, training in module_modes[1:]:
                m.training = training  # submodules whose mode differed from it
