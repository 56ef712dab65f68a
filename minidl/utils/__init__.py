"""Keras 2's ``keras.utils``: label encoding, normalisation and the ``Sequence`` base class.

>>> to_categorical([0, 2, 1]).tolist()
[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
>>> normalize([[3.0, 4.0]]).tolist()
[[0.6, 0.8]]
"""

from __future__ import annotations

from minidl.utils.np_utils import normalize, to_categorical
from minidl.utils.sequence import Sequence

__all__ = ["Sequence", "normalize", "to_categorical"]
