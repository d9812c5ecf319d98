"""The FTP agent's server (twisted.protocols.ftp): files of any size.

    python -m agents.tools.ftpserver ADDRESS PORT USER PASSWORD

After logging in, RETR N (any number of bytes up to 1 GiB) sends N bytes;
LIST shows a few sizes.  Read-only.  Every transfer is logged as a JSON line
the agent counts.
"""

from __future__ import annotations

import io
import json
import sys
import time
from typing import Any

from twisted.cred import checkers, portal
from twisted.internet import defer
from twisted.protocols import ftp
from twisted.python.filepath import Permissions
from zope.interface import implementer

from agents.tools.common import server_main

MAX_SIZE = 1 << 30
SAMPLES = ["1000", "10000", "100000", "1000000"]


class SizedFile(io.RawIOBase):
    """N bytes, made as they are read."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= n
        return b"x" * n


def _size(path: list[str]) -> int | None:
    if len(path) == 1 and path[0].isdigit() and int(path[0]) <= MAX_SIZE:
        return int(path[0])
    return None


@implementer(ftp.IFTPShell)
class SizedShell(ftp.FTPAnonymousShell):
    """A read-only, virtual file system: every /N is a file of N bytes."""

    def __init__(self) -> None:
        super().__init__(None)

    def openForReading(self, path):
        size = _size(path)
        if size is None:
            return defer.fail(ftp.FileNotFoundError("/".join(path)))
        print(json.dumps({"retrieved": size}), flush=True)
        return defer.succeed(ftp._FileReader(SizedFile(size)))

    def access(self, path):
        return defer.succeed(None) if not path else defer.fail(ftp.IsNotADirectoryError(path))

    def _entry(self, size: int | None, keys) -> list:
        mode = 0o444 if size is not None else 0o555
        values = {"size": size or 0, "directory": size is None, "permissions": Permissions(mode),
                  "hardlinks": 1, "modified": time.time(), "owner": "seer", "group": "seer"}
        return [values[k] for k in keys]

    def stat(self, path, keys=()):
        if not path:
            return defer.succeed(self._entry(None, keys))
        size = _size(path)
        if size is None:
            return defer.fail(ftp.FileNotFoundError("/".join(path)))
        return defer.succeed(self._entry(size, keys))

    def list(self, path, keys=()):
        if path:
            size = _size(path)
            if size is None:
                return defer.fail(ftp.FileNotFoundError("/".join(path)))
            return defer.succeed([(path[0], self._entry(size, keys))])
        return defer.succeed([(name, self._entry(int(name), keys)) for name in SAMPLES])


class Realm:
    def requestAvatar(self, avatar_id, mind, *interfaces):
        if ftp.IFTPShell in interfaces:
            return ftp.IFTPShell, SizedShell(), lambda: None
        raise NotImplementedError("only FTP shells here")


def start(reactor: Any, address: str, port: int, user: str, password: str) -> dict[str, Any]:
    # Twisted's FTP hands the checker the user and password as str, while
    # the keyword form of this checker would store the user as bytes.
    checker = checkers.InMemoryUsernamePasswordDatabaseDontUse()
    checker.addUser(user, password)
    factory = ftp.FTPFactory(portal.Portal(Realm(), [checker]))
    factory.allowAnonymous = False
    factory.welcomeMessage = "SEER FTP agent: RETR N sends N bytes"
    reactor.listenTCP(port, factory, interface=address)
    return {}


def main(argv: list[str]) -> int:
    return server_main(argv, __doc__, ("user", "password"), start)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
