# ResNet-110, end-to-end training, CIFAR-10. Paper Table 2: 6.50 +- 0.34 % test
# error.
_base_ = './_base_/resnet110_cifar10.py'
