"""``scan_code``: what a Python source would do that the runner must not allow, read from its AST.

Names are resolved through imports, aliases and assignments (``import os as o; o.system``,
``s = getattr(os, "sys" + "tem")``, ``__builtins__.__dict__["eval"]``, ``sys.modules["os"]``), and
strings are folded where they are computed from constants (concatenation, joins, slicing, ``chr``,
base64/hex/rot13 decoding), so the obfuscations that defeat a regex over the text are seen; building a
name or code from pieces is itself reported. The analysis is flow-insensitive: a name that is ever
bound to a module or function is treated as that everywhere.
"""

from __future__ import annotations

import ast
import base64
import binascii
import codecs
import re
from dataclasses import dataclass

from apps.governance.detectors.findings import Finding

_PROCESS = {
    "os": {
        "system", "popen", "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe",
        "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe",
        "fork", "forkpty", "posix_spawn", "posix_spawnp", "startfile", "kill", "killpg",
    },
    "subprocess": {"*"},
    "pty": {"spawn", "fork"},
    "multiprocessing": {"Process", "Pool"},
    "asyncio": {"create_subprocess_exec", "create_subprocess_shell"},
    "platform": {"popen"},
    "commands": {"*"},
}  # fmt: skip
_NETWORK = {
    "socket", "ssl", "urllib.request", "urllib3", "http.client", "http.server", "requests", "httpx",
    "aiohttp", "ftplib", "smtplib", "poplib", "imaplib", "telnetlib", "paramiko", "websocket",
    "websockets", "xmlrpc.client", "socketserver", "asyncio.open_connection", "asyncio.start_server",
    "pycurl", "twisted", "scapy",
}  # fmt: skip
_NATIVE = {"ctypes", "_ctypes", "cffi", "mmap"}
_DYNAMIC = {
    "builtins.eval", "builtins.exec", "builtins.compile", "builtins.__import__", "importlib.import_module",
    "importlib.__import__", "runpy.run_path", "runpy.run_module", "code.interact", "marshal.loads",
    "pickle.loads", "pickle.load", "dill.loads", "importlib.util.spec_from_file_location",
}  # fmt: skip
_FILE_WRITERS = {
    "os.remove", "os.unlink", "os.rmdir", "os.removedirs", "os.rename", "os.renames", "os.replace",
    "os.chmod", "os.chown", "os.link", "os.symlink", "os.makedirs", "os.mkdir", "os.truncate",
    "shutil.rmtree", "shutil.move", "shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.copytree",
    "shutil.chown",
}  # fmt: skip
_PATH_WRITE_METHODS = {
    "write_text",
    "write_bytes",
    "unlink",
    "rmdir",
    "touch",
    "mkdir",
    "rename",
    "replace",
    "chmod",
}
_SECRET_NAME = re.compile(
    r"(?i)(?:key|secret|token|passw(?:or)?d|passwd|credential|auth|private|dsn|database_url|"
    r"aws_|gcp_|azure_|github|gitlab|openai|anthropic|slack|stripe|session|cookie|signing)"
)
_SECRET_FILE = re.compile(
    r"(?i)(?:^|/|\\)(?:\.ssh(?:/|\\|$)|id_(?:rsa|dsa|ecdsa|ed25519)|authorized_keys|known_hosts|"
    r"\.aws(?:/|\\)|credentials(?:\.json)?$|\.netrc|\.git-credentials|\.pgpass|\.pypirc|\.npmrc|"
    r"\.docker(?:/|\\)config\.json|\.kube(?:/|\\)config|\.gnupg|\.env(?:\.|$)|shadow$|gshadow$|"
    r"master\.passwd|/proc/(?:self|\d+)/(?:environ|mem|maps)|/var/run/secrets|/run/secrets|"
    r"\.config(?:/|\\)gcloud|keychain|\.bash_history|\.zsh_history|wallet\.dat|/etc/passwd$|"
    r"/etc/sudoers|\.htpasswd|private[_-]?key|\.pem$|\.key$)"
)
_ESCAPE_ATTRS = {
    "__subclasses__", "__globals__", "__builtins__", "__code__", "__closure__", "__mro__", "__bases__",
    "f_globals", "f_locals", "f_back", "gi_frame", "cr_frame", "tb_frame", "co_code", "__loader__",
}  # fmt: skip
_TRUE_LOOP = ("itertools.count", "itertools.cycle", "itertools.repeat")
# a string that decoding functions turn into another string: folded so ``exec(b64decode(...))`` is read
_DECODERS = {
    "base64.b64decode", "base64.standard_b64decode", "base64.urlsafe_b64decode", "base64.b32decode",
    "base64.b16decode", "base64.a85decode", "base64.b85decode", "binascii.unhexlify", "binascii.a2b_hex",
    "binascii.a2b_base64", "bytes.fromhex", "codecs.decode", "zlib.decompress", "gzip.decompress",
    "bz2.decompress", "lzma.decompress",
}  # fmt: skip
_BUILTIN_NAMES = {
    "eval", "exec", "compile", "__import__", "open", "getattr", "globals", "locals", "vars", "chr",
    "breakpoint", "input", "dict", "print", "list", "repr", "str", "range", "int",
}  # fmt: skip


@dataclass
class _Value:
    """A string folded from constants; ``computed`` when it took more than one literal to build."""

    text: str
    computed: bool


def _line_offsets(source: str) -> list[int]:
    offsets = [0]
    for line in source.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


class _Analyzer(ast.NodeVisitor):
    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.starts = _line_offsets(source)
        self.aliases: dict[str, str] = {}
        self.strings: dict[str, ast.expr] = {}
        self.local_defs: set[str] = set()
        self.star_modules: list[str] = []
        self.findings: list[Finding] = []
        self.loops: list[bool] = []  # for each enclosing loop: does it run forever?
        self._seen: set[tuple[str, tuple[int, int] | None]] = set()

    # -------------------------------------------------------------- positions
    def _offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""
        chars = len(line.encode("utf-8")[:col].decode("utf-8", "ignore"))
        return self.starts[min(lineno - 1, len(self.starts) - 1)] + chars

    def span(self, node: ast.AST) -> tuple[int, int] | None:
        if not hasattr(node, "lineno"):
            return None
        start = self._offset(node.lineno, node.col_offset)
        end_line = getattr(node, "end_lineno", None) or node.lineno
        end_col = getattr(node, "end_col_offset", None)
        end = self._offset(end_line, end_col) if end_col is not None else start + 1
        return (start, max(end, start + 1))

    def add(self, flag: str, severity: int, reason: str, detector: str, node: ast.AST) -> None:
        span = self.span(node)
        key = (detector + reason, span)
        if key in self._seen:
            return
        self._seen.add(key)
        self.findings.append(Finding(flag, severity, severity / 10, reason, f"code:{detector}", span))

    # -------------------------------------------------------------- name resolution
    def collect(self, tree: ast.AST) -> None:
        """Bind imports, aliases and constant strings, flow-insensitively, to a fixed point."""
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.aliases[a.asname] = a.name
                    else:
                        root = a.name.split(".")[0]
                        self.aliases[root] = root
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    if a.name == "*":
                        self.star_modules.append(node.module)
                    else:
                        self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.local_defs.add(node.name)
        for _ in range(4):
            changed = False
            for node in ast.walk(tree):
                targets: list[ast.expr] = []
                value: ast.expr | None = None
                if isinstance(node, ast.Assign):
                    targets, value = node.targets, node.value
                elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
                    targets, value = [node.target], node.value
                if value is None:
                    continue
                for target in targets:
                    if not isinstance(target, ast.Name):
                        continue
                    qual = self.qualname(value)
                    if qual and self.aliases.get(target.id) != qual:
                        self.aliases[target.id] = qual
                        changed = True
                    elif qual is None and self.fold(value) is not None and target.id not in self.strings:
                        self.strings[target.id] = value
                        changed = True
            if not changed:
                break

    def qualname(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            if node.id in ("__builtins__", "builtins"):
                return "builtins"
            if node.id in _BUILTIN_NAMES and node.id not in self.local_defs:
                return f"builtins.{node.id}"
            for module in self.star_modules:
                return f"{module}.{node.id}"
            return None
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value)
            if base is None:
                return None
            if node.attr in ("__dict__",):
                return base
            return f"{base}.{node.attr}"
        if isinstance(node, ast.Subscript):
            base = self.qualname(node.value)
            key = self.fold(node.slice)
            if base in ("sys.modules",) and key is not None:
                return key.text
            if base in ("builtins.globals", "builtins.locals") or base is None:
                return None
            if key is not None:
                return key.text if base == "builtins.globals()" else f"{base}.{key.text}"
            return None
        if isinstance(node, ast.Call):
            func = self.qualname(node.func)
            if func in ("builtins.getattr",) and len(node.args) >= 2:
                base = self.qualname(node.args[0])
                attr = self.fold(node.args[1])
                if base is not None and attr is not None:
                    return f"{base}.{attr.text}"
            if func in ("builtins.__import__", "importlib.import_module") and node.args:
                name = self.fold(node.args[0])
                if name is not None:
                    return name.text
            if func in ("builtins.vars",) and node.args:
                return self.qualname(node.args[0])
            if func in ("builtins.globals", "builtins.locals") and not node.args:
                return "builtins.globals()"
        return None

    def fold(self, node: ast.AST) -> _Value | None:
        """The string value of ``node`` when it is built from constants, else None."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                return _Value(node.value, False)
            if isinstance(node.value, bytes):
                return _Value(node.value.decode("latin-1"), False)
            return None
        if isinstance(node, ast.Name) and node.id in self.strings:
            inner = self.fold(self.strings[node.id])
            return inner
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.fold(node.left), self.fold(node.right)
            if left is not None and right is not None:
                return _Value(left.text + right.text, True)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            left = self.fold(node.left)
            if left is not None:
                parts = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
                folded = [self.fold(p) for p in parts]
                if all(f is not None for f in folded):
                    try:
                        return _Value(left.text % tuple(f.text for f in folded if f), True)
                    except (TypeError, ValueError):
                        return None
        if isinstance(node, ast.JoinedStr):
            pieces = []
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    folded = self.fold(part.value)
                    if folded is None:
                        return None
                    pieces.append(folded.text)
                else:
                    folded = self.fold(part)
                    if folded is None:
                        return None
                    pieces.append(folded.text)
            return _Value("".join(pieces), len(node.values) > 1)
        if isinstance(node, ast.Subscript):
            base = self.fold(node.value)
            if base is not None and isinstance(node.slice, ast.Slice):
                bounds = []
                for b in (node.slice.lower, node.slice.upper, node.slice.step):
                    if b is None:
                        bounds.append(None)
                    elif isinstance(b, ast.Constant) and isinstance(b.value, int):
                        bounds.append(b.value)
                    elif (
                        isinstance(b, ast.UnaryOp)
                        and isinstance(b.op, ast.USub)
                        and isinstance(b.operand, ast.Constant)
                        and isinstance(b.operand.value, int)
                    ):
                        bounds.append(-b.operand.value)
                    else:
                        return None
                if bounds[2] == 0:
                    return None
                return _Value(base.text[slice(*bounds)], True)
        if isinstance(node, ast.Call):
            return self._fold_call(node)
        return None

    def _fold_call(self, node: ast.Call) -> _Value | None:
        func = node.func
        # "".join([...]) / "sep".join(...)
        if isinstance(func, ast.Attribute) and func.attr == "join" and len(node.args) == 1:
            sep = self.fold(func.value)
            arg = node.args[0]
            items = None
            if isinstance(arg, ast.List | ast.Tuple):
                items = [self.fold(e) for e in arg.elts]
            elif isinstance(arg, ast.GeneratorExp | ast.ListComp):
                items = self._fold_comprehension(arg)
            if sep is not None and items is not None and all(i is not None for i in items):
                return _Value(sep.text.join(i.text for i in items if i), True)
            return None
        if isinstance(func, ast.Attribute) and func.attr in ("decode", "encode", "lower", "upper", "strip"):
            base = self.fold(func.value)
            if base is None:
                return None
            if func.attr == "decode" and node.args:
                codec = self.fold(node.args[0])
                if codec is not None and "rot" in codec.text.lower():
                    return _Value(codecs.decode(base.text, "rot13"), True)
            text = {"lower": str.lower, "upper": str.upper, "strip": str.strip}.get(func.attr, lambda s: s)(
                base.text
            )
            return _Value(text, base.computed)
        if isinstance(func, ast.Attribute) and func.attr == "replace" and len(node.args) == 2:
            base, old, new = self.fold(func.value), self.fold(node.args[0]), self.fold(node.args[1])
            if base and old and new:
                return _Value(base.text.replace(old.text, new.text), True)
            return None
        qual = self.qualname(func)
        if qual == "builtins.chr" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, int) and 0 <= arg.value < 0x110000:
                return _Value(chr(arg.value), True)
            return None
        if qual in ("builtins.str",) and node.args:
            return self.fold(node.args[0])
        if qual in _DECODERS or (isinstance(func, ast.Attribute) and func.attr == "fromhex"):
            if not node.args:
                return None
            arg = self.fold(node.args[0])
            if arg is None:
                return None
            try:
                if qual == "codecs.decode":
                    codec = (
                        self.fold(node.args[1]).text if len(node.args) > 1 and self.fold(node.args[1]) else ""
                    )
                    if "rot" in codec.lower():
                        return _Value(codecs.decode(arg.text, "rot13"), True)
                    if "hex" in codec.lower():
                        return _Value(bytes.fromhex(arg.text).decode("latin-1"), True)
                    if "base64" in codec.lower():
                        return _Value(base64.b64decode(arg.text).decode("latin-1"), True)
                    return None
                if qual and "hex" in qual or (isinstance(func, ast.Attribute) and func.attr == "fromhex"):
                    return _Value(bytes.fromhex(arg.text).decode("latin-1"), True)
                if qual and ("b64" in qual or "base64" in qual):
                    return _Value(
                        base64.b64decode(arg.text + "=" * (-len(arg.text) % 4)).decode("latin-1"), True
                    )
                if qual == "base64.b32decode":
                    return _Value(base64.b32decode(arg.text).decode("latin-1"), True)
            except (binascii.Error, ValueError, UnicodeDecodeError):
                return None
            return _Value("<decoded payload>", True)
        return None

    def _fold_comprehension(self, node: ast.GeneratorExp | ast.ListComp) -> list[_Value | None] | None:
        # [chr(x) for x in [101, 118, ...]] and (chr(int(b, 2)) for b in [...]) are common spellings
        if len(node.generators) != 1:
            return None
        gen = node.generators[0]
        if not isinstance(gen.target, ast.Name) or not isinstance(gen.iter, ast.List | ast.Tuple):
            return None
        values: list[_Value | None] = []
        for element in gen.iter.elts:
            if not isinstance(element, ast.Constant):
                return None
            env = {gen.target.id: element.value}
            values.append(_eval_char(node.elt, env))
        return values

    # -------------------------------------------------------------- rules
    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self._check_module(a.name, node, "import")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module:
            self._check_module(node.module, node, "import")
            for a in node.names:
                self._check_module(f"{node.module}.{a.name}", node, "import")

    def _check_module(self, name: str, node: ast.AST, how: str) -> None:
        root = name.split(".")[0]
        if root in _NATIVE:
            self.add("unsafe", 8, f"native code through {root} ({how})", "native", node)
        elif name in _NETWORK or root in _NETWORK:
            self.add("unsafe", 5, f"network module {name} ({how})", "network", node)
        elif root in ("subprocess", "pty", "commands"):
            self.add("unsafe", 5, f"process module {name} ({how})", "process", node)

    def _loop(self, node: ast.While | ast.For | ast.AsyncFor, forever: bool) -> None:
        self.loops.append(forever)
        self.generic_visit(node)
        self.loops.pop()

    def visit_While(self, node: ast.While) -> None:
        forever = isinstance(node.test, ast.Constant) and bool(node.test.value)
        self._loop(node, forever)

    def visit_For(self, node: ast.For) -> None:
        forever = False
        if isinstance(node.iter, ast.Call):
            qual = self.qualname(node.iter.func)
            forever = qual in _TRUE_LOOP or (
                qual == "builtins.range"
                and any(
                    isinstance(a, ast.Constant) and isinstance(a.value, int) and a.value >= 10_000
                    for a in node.iter.args
                )
            )
        self._loop(node, forever)

    visit_AsyncFor = visit_For  # type: ignore[assignment]

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in _ESCAPE_ATTRS:
            self.add("malicious", 7, f"introspection escape hatch ({node.attr})", "escape", node)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        base = self.qualname(node.value)
        key = self.fold(node.slice)
        if base in ("builtins", "builtins.globals()", "sys.modules") and key is not None and key.computed:
            self.add("malicious", 7, f"name built at run time: {key.text!r}", "obfuscation", node)
        elif (
            base in ("builtins", "builtins.globals()")
            and key is None
            and not isinstance(node.slice, ast.Constant)
        ):
            self.add("malicious", 7, "builtins looked up by a computed key", "obfuscation", node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        qual = self.qualname(node.func)
        if qual is not None:
            self._check_call(qual, node)
        elif isinstance(node.func, ast.Attribute) and node.func.attr in _PATH_WRITE_METHODS:
            self._check_path_method(node)
        self.generic_visit(node)

    def _check_call(self, qual: str, node: ast.Call) -> None:
        root, _, attr = qual.partition(".")
        in_forever = any(self.loops)
        spawning = (root in _PROCESS and ("*" in _PROCESS[root] or attr.split(".")[0] in _PROCESS[root])) or (
            qual.startswith("multiprocessing.") and attr.split(".")[0] in _PROCESS["multiprocessing"]
        )
        if spawning:
            if in_forever or qual == "os.fork" and self.loops:
                self.add("malicious", 9, f"fork bomb: {qual} in a loop that never ends", "fork-bomb", node)
            else:
                self.add("unsafe", 7, f"process spawning: {qual}", "process", node)
        elif qual in _NETWORK or root in _NETWORK or any(qual.startswith(n + ".") for n in _NETWORK):
            self.add("unsafe", 6, f"network access: {qual}", "network", node)
        elif root in _NATIVE:
            self.add("unsafe", 8, f"native code: {qual}", "native", node)
        elif qual in _DYNAMIC:
            self._check_dynamic(qual, node)
        elif qual == "builtins.getattr" and len(node.args) >= 2:
            attr_value = self.fold(node.args[1])
            if attr_value is None:
                self.add("malicious", 6, "getattr with a name computed at run time", "obfuscation", node)
            elif attr_value.computed:
                self.add(
                    "malicious",
                    7,
                    f"getattr with a name built from pieces: {attr_value.text!r}",
                    "obfuscation",
                    node,
                )
        elif qual in ("builtins.open", "io.open", "codecs.open", "os.open", "pathlib.Path.open"):
            self._check_open(node)
        elif qual in _FILE_WRITERS:
            self._check_paths(qual, node, node.args[:2])
        elif qual in ("os.getenv", "os.environ.get", "os.environ.__getitem__", "os.getenvb"):
            self._check_env_key(node.args[0] if node.args else None, node)
        elif qual in ("os.environ.copy", "os.environ.items", "os.environ.values", "os.environ.keys"):
            self.add("high_risk", 6, "reads the whole environment", "secrets", node)
        elif qual in ("builtins.vars", "builtins.dict", "builtins.print", "json.dumps") and node.args:
            if any(self.qualname(a) == "os.environ" for a in node.args):
                self.add("high_risk", 6, "reads the whole environment", "secrets", node)
        if qual.startswith("pathlib.Path") and node.args:
            path = self.fold(node.args[0])
            if path is not None and _SECRET_FILE.search(path.text):
                self.add("high_risk", 8, f"reads a credentials file: {path.text}", "secrets", node)

    def _check_dynamic(self, qual: str, node: ast.Call) -> None:
        name = qual.split(".")[-1]
        arg = node.args[0] if node.args else None
        folded = self.fold(arg) if arg is not None else None
        if qual in ("builtins.__import__", "importlib.import_module", "importlib.__import__"):
            if folded is None:
                self.add("malicious", 7, f"{name} of a module name computed at run time", "obfuscation", node)
            else:
                if folded.computed:
                    self.add(
                        "malicious",
                        7,
                        f"{name} of a name built from pieces: {folded.text!r}",
                        "obfuscation",
                        node,
                    )
                self._check_module(folded.text, node, name)
            return
        if qual in ("pickle.loads", "pickle.load", "dill.loads", "marshal.loads"):
            self.add("unsafe", 6, f"deserialises code or objects: {qual}", "dynamic", node)
            return
        if folded is None:
            self.add("malicious", 7, f"{name} of a string computed at run time", "dynamic", node)
        elif folded.computed:
            self.add("malicious", 8, f"{name} of code built from pieces or decoded", "obfuscation", node)
            self._scan_inner(folded.text, node)
        else:
            self.add("unsafe", 4, f"{name} of a literal string", "dynamic", node)
            self._scan_inner(folded.text, node)

    def _scan_inner(self, code: str, node: ast.AST) -> None:
        """The code a string would run, scanned too; its findings point at the exec/eval call."""
        if getattr(self, "_depth", 0) >= 2:
            return
        try:
            inner_tree = ast.parse(code)
        except (SyntaxError, ValueError):
            return
        inner = _Analyzer(code)
        inner._depth = getattr(self, "_depth", 0) + 1
        inner.aliases = dict(self.aliases)
        inner.collect(inner_tree)
        inner.visit(inner_tree)
        for f in inner.findings:
            self.add(f.flag, f.severity, f"in executed string: {f.reason}", f.detector.split(":", 1)[1], node)

    def _mode(self, node: ast.Call, position: int) -> str:
        if len(node.args) > position:
            folded = self.fold(node.args[position])
            return folded.text if folded else "?"
        for kw in node.keywords:
            if kw.arg == "mode":
                folded = self.fold(kw.value)
                return folded.text if folded else "?"
        return "r"

    def _check_open(self, node: ast.Call) -> None:
        if not node.args:
            return
        path = self.fold(node.args[0])
        mode = self._mode(node, 1)
        if path is None:
            return
        if _SECRET_FILE.search(path.text):
            self.add("high_risk", 8, f"reads a credentials file: {path.text}", "secrets", node)
        if any(c in mode for c in "wax+") and _outside_workdir(path.text):
            self.add("unsafe", 7, f"writes outside the working directory: {path.text}", "filesystem", node)

    def _check_paths(self, qual: str, node: ast.Call, args: list[ast.expr]) -> None:
        for arg in args:
            path = self.fold(arg)
            if path is not None and _outside_workdir(path.text):
                self.add(
                    "unsafe", 7, f"{qual} outside the working directory: {path.text}", "filesystem", node
                )
                return

    def _check_path_method(self, node: ast.Call) -> None:
        func = node.func
        assert isinstance(func, ast.Attribute)
        receiver = func.value
        if (
            isinstance(receiver, ast.Call)
            and (self.qualname(receiver.func) or "").startswith("pathlib.")
            and receiver.args
        ):
            path = self.fold(receiver.args[0])
            if path is not None and _outside_workdir(path.text):
                self.add(
                    "unsafe", 7, f"writes outside the working directory: {path.text}", "filesystem", node
                )

    def _check_env_key(self, key_node: ast.expr | None, node: ast.AST) -> None:
        key = self.fold(key_node) if key_node is not None else None
        if key is None:
            self.add("high_risk", 5, "reads an environment variable chosen at run time", "secrets", node)
        elif _SECRET_NAME.search(key.text):
            self.add("high_risk", 7, f"reads a secret from the environment: {key.text}", "secrets", node)

    def finish(self, tree: ast.AST) -> None:
        # os.environ["X"] subscripts and iteration over os.environ
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and self.qualname(node.value) == "os.environ":
                self._check_env_key(node.slice, node)
            elif isinstance(node, ast.For | ast.comprehension) and self.qualname(node.iter) == "os.environ":
                self.add("high_risk", 6, "reads the whole environment", "secrets", node.iter)


def _eval_char(node: ast.expr, env: dict[str, object]) -> _Value | None:
    """chr(x), chr(int(x, 2)), chr(x ^ k) with x bound: enough for the usual character-code spellings."""
    try:
        value = _tiny_eval(node, env)
    except (ValueError, TypeError, OverflowError, ZeroDivisionError):
        return None
    return _Value(value, True) if isinstance(value, str) else None


def _tiny_eval(node: ast.expr, env: dict[str, object]) -> object:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in env:
        return env[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _tiny_eval(node.left, env), _tiny_eval(node.right, env)
        if isinstance(left, int) and isinstance(right, int):
            ops = {ast.Add: int.__add__, ast.Sub: int.__sub__, ast.BitXor: int.__xor__}
            op = ops.get(type(node.op))
            if op is not None:
                return op(left, right)
        raise ValueError
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("chr", "int", "ord")
    ):
        args = [_tiny_eval(a, env) for a in node.args]
        if node.func.id == "chr" and len(args) == 1 and isinstance(args[0], int):
            return chr(args[0])
        if node.func.id == "int" and 1 <= len(args) <= 2:
            return int(*args)  # type: ignore[arg-type]
        if node.func.id == "ord" and len(args) == 1 and isinstance(args[0], str):
            return ord(args[0])
    raise ValueError


def _outside_workdir(path: str) -> bool:
    p = path.replace("\\", "/")
    return p.startswith(("/", "~")) or re.match(r"^[a-zA-Z]:/", p) is not None or ".." in p.split("/")


def scan_code(source: str) -> list[Finding]:
    """Findings for Python ``source``, most severe first; a syntax error is a finding, not an exception."""
    if not isinstance(source, str):
        raise TypeError("scan_code takes a str")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        analyzer = _Analyzer(source)
        start = analyzer._offset(exc.lineno or 1, max(0, (exc.offset or 1) - 1)) if exc.lineno else 0
        start = min(start, len(source))
        span = (start, min(len(source), start + 1)) if source else None
        return [
            Finding(
                "unverified", 4, 0.4, f"does not parse: {exc.msg} (line {exc.lineno})", "code:syntax", span
            )
        ]
    except (ValueError, RecursionError, MemoryError) as exc:
        return [Finding("unverified", 4, 0.4, f"does not parse: {exc}", "code:syntax", None)]
    analyzer = _Analyzer(source)
    try:
        analyzer.collect(tree)
        analyzer.visit(tree)
        analyzer.finish(tree)
    except RecursionError:
        analyzer.add("malicious", 6, "nested too deeply to analyse (obfuscation?)", "obfuscation", tree)
    return sorted(analyzer.findings, key=lambda f: (-f.severity, f.span or (-1, -1), f.detector))
