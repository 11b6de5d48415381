# ResNet-32 + DGL (decoupled greedy learning, Belilovsky et al. 2020, in the
# InfoPro paper's implementation) on CIFAR-10: InfoPro (Softmax) without the
# reconstruction term (lambda1 = 0), '1c2f' classifier with weight 1 on every
# local module. Rows use InfoPro's split points at the same K.
_base_ = './resnet32_infopro-softmax_cifar10.py'

model = dict(local_heads=dict(recon=None), loss_weights=dict(task=1.0))
