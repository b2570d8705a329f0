"""Whole networks for the fusion bench, written from their published structure (no timm here).

- ``iresnet``: insightface's IResNet (``recognition/arcface_torch/backbones/
  iresnet.py``): a stem conv -> bn1 -> prelu, then blocks of bn1 -> conv1 ->
  bn2 -> prelu -> conv2 -> bn3 (+ shortcut), ``nn.PReLU(planes)`` per block,
  a forward that branches on ``self.training``. IResNet-50: (3, 4, 14, 3)
  blocks, 25 BatchNorm -> PReLU pairs, at 112x112.
- ``timm_resnet``: timm's ResNet (``timm/models/resnet.py``) with
  ``act_layer``: a stem conv -> bn1 -> act1, then Bottlenecks of bn1/act1,
  bn2/drop_block (nn.Identity)/act2, bn3 then the add then act3 (after the
  add: not a pair). ResNet-50: (3, 4, 6, 3) blocks, 1 + 2 x 16 = 33 pairs.
- ``norm_act_net``: a stack of conv -> timm ``BatchNormAct2d`` blocks, as
  EfficientNet, RegNet and ResNetV2 use them; the class is a stand-in with
  timm's module and qualname, and timm's forward (norm, ``drop``, ``act``).
"""

import torch
from torch import nn
from torch.nn import functional as F

using_ckpt = False  # insightface's module global: checkpointing off


class IBasicBlock(nn.Module):
    """IResNet's block; ``activation(planes)`` in PReLU's place (nn.PReLU as published)."""

    def __init__(self, inplanes, planes, stride=1, downsample=None, activation=nn.PReLU):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = activation(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample

    def forward_impl(self, x):
        identity = x
        out = self.prelu(self.bn2(self.conv1(self.bn1(x))))
        out = self.bn3(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return out

    def forward(self, x):
        if self.training and using_ckpt:
            return torch.utils.checkpoint.checkpoint(self.forward_impl, x, use_reentrant=False)
        return self.forward_impl(x)


class IResNet(nn.Module):
    """IResNet: stem, four stages of stride 2, bn2, dropout, fc, a BatchNorm1d embedding."""

    def __init__(self, layers, width=64, image_size=112, num_features=512, activation=nn.PReLU):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=1e-05)
        self.prelu = activation(width)
        stages = [self._make_layer(width * m, n, activation) for m, n in zip((1, 2, 4, 8), layers)]
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn2 = nn.BatchNorm2d(width * 8, eps=1e-05)
        self.dropout = nn.Dropout(p=0, inplace=True)
        side = image_size // 16
        self.fc = nn.Linear(width * 8 * side * side, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-05)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False

    def _make_layer(self, planes, blocks, activation):
        downsample = nn.Sequential(
            nn.Conv2d(self.inplanes, planes, 1, 2, bias=False), nn.BatchNorm2d(planes, eps=1e-05)
        )
        layers = [IBasicBlock(self.inplanes, planes, 2, downsample, activation)]
        self.inplanes = planes
        layers += [IBasicBlock(planes, planes, activation=activation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def iresnet(width=64, image_size=112, layers=(3, 4, 14, 3), activation=nn.PReLU) -> IResNet:
    """IResNet-50 by default; ``width`` scales every stage."""
    return IResNet(layers, width, image_size, activation=activation)


class Bottleneck(nn.Module):
    """timm's ResNet Bottleneck (expansion 4), its attributes and its forward's order."""

    def __init__(self, inplanes, planes, stride=1, downsample=None, act_layer=nn.ReLU):
        super().__init__()
        outplanes = planes * 4
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1, self.act1 = nn.BatchNorm2d(planes), act_layer(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2, self.drop_block = nn.BatchNorm2d(planes), nn.Identity()
        self.act2, self.aa = act_layer(inplace=True), nn.Identity()
        self.conv3 = nn.Conv2d(planes, outplanes, 1, bias=False)
        self.bn3, self.se = nn.BatchNorm2d(outplanes), None
        self.act3, self.downsample, self.drop_path = act_layer(inplace=True), downsample, None

    def forward(self, x):
        shortcut = x
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.aa(self.act2(self.drop_block(self.bn2(self.conv2(x)))))
        x = self.bn3(self.conv3(x))
        if self.se is not None:
            x = self.se(x)
        if self.drop_path is not None:
            x = self.drop_path(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        x += shortcut
        return self.act3(x)


class TimmResNet(nn.Module):
    """timm's ResNet: conv1 -> bn1 -> act1 -> maxpool, four stages, global pool, fc."""

    def __init__(self, layers, act_layer, width=64, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1, self.act1 = nn.BatchNorm2d(width), act_layer(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = width
        for i, (blocks, mult) in enumerate(zip(layers, (1, 2, 4, 8))):
            planes, stride = width * mult, 1 if i == 0 else 2
            downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)
            )
            stage = [Bottleneck(inplanes, planes, stride, downsample, act_layer)]
            stage += [Bottleneck(planes * 4, planes, act_layer=act_layer) for _ in range(1, blocks)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
            inplanes = planes * 4
        self.fc = nn.Linear(inplanes, classes)

    def forward_features(self, x):
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.forward_features(x), 1), 1))


def timm_resnet(act_layer, width=64, layers=(3, 4, 6, 3)) -> TimmResNet:
    """ResNet-50 by default, as ``timm.create_model("resnet50", act_layer=...)`` builds it."""
    return TimmResNet(layers, act_layer, width)


class BatchNormAct2d(nn.BatchNorm2d):
    """A stand-in for timm.layers.norm_act.BatchNormAct2d: BatchNorm, then .drop, then .act."""

    def __init__(self, num_features, act_layer=nn.ReLU, apply_act=True):
        super().__init__(num_features)
        self.drop = nn.Identity()
        self.act = act_layer(inplace=True) if apply_act else nn.Identity()

    def forward(self, x):
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_running = not self.training or self.track_running_stats
        x = F.batch_norm(
            x, self.running_mean if use_running else None,
            self.running_var if use_running else None,
            self.weight, self.bias, bn_training, factor, self.eps,
        )  # fmt: skip
        return self.act(self.drop(x))


BatchNormAct2d.__module__, BatchNormAct2d.__qualname__ = "timm.layers.norm_act", "BatchNormAct2d"


def norm_act_net(act_layer, width=32, blocks=8) -> nn.Sequential:
    """conv -> BatchNormAct2d, ``blocks`` times, widths doubling every two blocks; a head."""
    layers: list[nn.Module] = []
    c_in = 3
    for i in range(blocks):
        c_out = width * 2 ** (i // 2)
        stride = 2 if i % 2 == 0 else 1
        layers += [
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
            BatchNormAct2d(c_out, act_layer),
        ]
        c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 10))
