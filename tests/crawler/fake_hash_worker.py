"""A stand-in hash worker for the tests of :mod:`crawler.workerpool`.

It speaks :mod:`crawler.hashworker`'s protocol and misbehaves on request: a body equal to
:data:`CRASH` makes it exit, :data:`HANG` makes it never answer, :data:`GARBAGE` makes it answer
something that is not JSON, :data:`NESTED` an answer nested too deep to parse, :data:`FAILURE`
the report of an exception; any other body gets its bytes-only digest (exact hashes). With
``--no-start`` it exits before saying it is ready.
"""

from __future__ import annotations

import json
import os
import sys
import threading

from crawler.hashworker import READY, read_request, write_frame
from crawler.workerpool import bytes_only_digest

CRASH = b"crash"
HANG = b"hang"
GARBAGE = b"garbage"
NESTED = b"nested"
FAILURE = b"failure"
#: Nesting depth of the NESTED answer: far past what Python's JSON parser recurses into.
NESTING = 200_000
CRASH_EXIT = 3
START_EXIT = 4
ERROR = "corrupt"


def main() -> None:
    if "--no-start" in sys.argv:
        sys.exit(START_EXIT)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    write_frame(stdout, READY)
    while (request := read_request(stdin)) is not None:
        body = request[1]
        if body == CRASH:
            os._exit(CRASH_EXIT)
        if body == HANG:
            threading.Event().wait()  # never answers: the pool's timeout must end this
        if body == GARBAGE:
            write_frame(stdout, b"not json")
            continue
        if body == NESTED:
            write_frame(stdout, b"[" * NESTING)
            continue
        if body == FAILURE:
            write_frame(
                stdout, json.dumps({"failure": "MemoryError", "message": "x" * 999}).encode()
            )
            continue
        digest = bytes_only_digest(body, ERROR)
        write_frame(stdout, json.dumps({"digest": digest.as_dict()}).encode())


if __name__ == "__main__":
    main()
