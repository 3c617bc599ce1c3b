"""skal._torch.eval_mode: eval inside the block, every module's mode back after."""

import pytest
import torch
from torch import nn

from skal._torch import eval_mode


def modes(module):
    return [m.training for m in module.modules()]


def test_eval_mode_switches_off_dropout_and_restores_mixed_modes():
    net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.BatchNorm1d(3))
    net.train()
    net[2].eval()  # a frozen batch norm inside a training network
    before = modes(net)
    x = torch.ones(4, 3)
    with eval_mode(net):
        assert not any(modes(net))
        torch.testing.assert_close(net[1](x), x)  # dropout is the identity
    assert modes(net) == before == [True, True, True, False]


def test_eval_mode_restores_on_error_and_handles_several_modules():
    first, second = nn.Dropout(0.1), nn.Sequential(nn.Dropout(0.1)).eval()
    with pytest.raises(RuntimeError, match="inside"):
        with eval_mode(first, second):
            assert not first.training and not second.training
            raise RuntimeError("inside")
    assert first.training and modes(second) == [False, False]
