# ResNet-32, end-to-end training, CIFAR-10. Paper Table 2: 7.37 +- 0.10 % test
# error.
_base_ = './_base_/resnet32_cifar10.py'
