"""The image decoder lives in sigrl.decode (it serves training, evaluation and tagging alike).

This old name stays importable and is the very same module object, so code that imports or
patches `sigrl.tagging.decode` keeps working.
"""

import sys

from sigrl import decode as _decode

sys.modules[__name__] = _decode
