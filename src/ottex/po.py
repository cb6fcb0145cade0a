"""``ottex.po``: the Pseudo Optimizer API, the same module object as :mod:`ottex.methods.pseudo_optimizer`.

Example:
    >>> import ottex
    >>> ottex.po.TrainOptions(variant="adapo", steps=10).lr_at(0)
    0.001
    >>> meta = ottex.po.train(["zebra.jpg"], "zebra.pt", ottex.po.TrainOptions(steps=2000))  # doctest: +SKIP
    >>> tex = ottex.po.synthesize("zebra.jpg", "zebra.pt", size=(512, 512), batch=4)  # doctest: +SKIP
"""

import sys

from .methods import pseudo_optimizer as _module

sys.modules[__name__] = _module
