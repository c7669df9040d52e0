"""Capture what tests/unit/test_report_consumers.py reads: real ScanResults of a
few fixture images (a failing Postfix, a hostile greeting, Exim, a clean image
and one that could not be inspected), scanned by the real gate on the real
engine and pickled. Run as root with the fixtures built:

    .venv/bin/python tests/unit/data/report/capture.py tests/unit/data/report/captured.pickle

Re-run it when the model (smtpgate/model.py) changes shape: the pickle then no
longer loads and the test says so.
"""

import pickle
import sys

from smtpgate import gate
from smtpgate.policy import default_policy
from smtpgate.targets.docker import DockerImageTarget

IMAGES = ("smtpgate-fixture/postfix-all", "smtpgate-fixture/hostile-greeting", "smtpgate-fixture/exim-all",
          "smtpgate-fixture/clean", "smtpgate-fixture/no-such-image:1")


def main(out: str) -> int:
    results = [gate.scan(DockerImageTarget(ref, pull="never"), default_policy(), gate.ScanOptions())
               for ref in IMAGES]
    with open(out, "wb") as fh:
        pickle.dump(results, fh, protocol=4)
    for result in results:
        print(result.target.ref, result.verdict, len(result.judged), "finding(s)", len(result.errors), "error(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
