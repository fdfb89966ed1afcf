"""`sigrl` with every inference call slowed down, so a test can kill a run part-way through.

Usage: python slow_tag.py SECONDS_PER_BATCH SIGRL-ARGS...
"""

import sys
import time

from sigrl.runtime.base import Runner


def slow_down(seconds: float) -> None:
    infer = Runner.infer

    def slow_infer(self, images, labels):
        time.sleep(seconds)
        return infer(self, images, labels)

    Runner.infer = slow_infer


if __name__ == "__main__":
    slow_down(float(sys.argv[1]))
    sys.argv = ["sigrl", *sys.argv[2:]]
    from sigrl.cli.main import main

    main()
