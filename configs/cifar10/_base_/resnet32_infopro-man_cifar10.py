# ResNet-32 + InfoPro + MAN (Su et al., "Momentum Auxiliary Network for
# Supervised Local Learning", ECCV 2024) on CIFAR-10: InfoPro (Contrast)
# with both local heads behind a momentum auxiliary network (an EMA copy
# plus a learnable copy of the first block of the next module, summed;
# infopro_mm.MomentumAuxHead documents where each detail comes from). The
# authors' code (JunhaoSu0/MAN) feeds InfoPro's decoder and contrastive
# head with that sum, and its train.py defaults to `--local_loss_mode
# contrast`; it publishes no command lines, so the rows reuse InfoPro's
# split points and lambdas at the same K. Paper (theirs): ResNet-32 K=16
# 9.65 % test error (InfoPro 12.93 %, E2E 6.37 % in their runs).
_base_ = './resnet32_infopro-contrast_cifar10.py'

model = dict(
    local_heads=dict(
        recon=dict(
            _delete_=True,
            type='infopro_mm.MomentumAuxHead',
            head=dict(type='infopro_mm.ReconstructionHead', arch='small')),
        task=dict(
            _delete_=True,
            type='infopro_mm.MomentumAuxHead',
            head=dict(type='infopro_mm.ContrastHead', arch='small'))))
