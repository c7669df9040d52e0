"""SMTP servers installed by language package managers: npm, PyPI, RubyGems, Maven jars.

What trivy-like scanners read, for the names in the registry (`Mta.lang_packages`):

- npm: `node_modules/<name>/package.json` (scoped `@scope/name`, nested
  `node_modules` of packages, pnpm's `node_modules/.pnpm/<name>@<version>/`),
  and Debian's `/usr/share/nodejs/<name>/package.json`;
- Python: `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` (or an egg-info file)
  in site-packages / dist-packages of the system Pythons, of /usr/local, of users
  (`~/.local`) and of every venv found by its `pyvenv.cfg`; names normalised as
  PEP 503 says (`Salmon_Mail` is `salmon-mail`);
- RubyGems: `specifications/<name>-<version>[-<platform>].gemspec` under the gem
  homes (`/usr/local/bundle`, `/var/lib/gems/*`, `vendor/bundle/ruby/*`, ...);
- jars: by file name (`greenmail-standalone-2.1.2.jar`), and inside jars not over
  the file limit by their `META-INF/maven/<group>/<artifact>/pom.properties` and the
  jars they nest (`BOOT-INF/lib/subethasmtp-3.1.7.jar`); a bigger jar is judged by
  its name only (RootFS reads no part of an over-limit file).

Where: the system locations above, plus a bounded walk of the usual application
roots (/app, /srv, /opt, /home, /root, /usr/src, /var/www, /workspace, /code and
the image's WORKDIR). The walk has a depth, an entry cap per directory, a total
directory cap and a time budget; what it skipped is said in the problems.

`command_server` answers "does this command run one of them?" where the command is
an interpreter running a script (`node server.js`, `python app.py`, `npm start`):
it reads the script (bounded) and the local modules it imports, and looks for the
server library (`Mta.imports`).
"""

from __future__ import annotations

import functools
import io
import json
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from smtpgate import software
from smtpgate.software.base import Mta
from smtpgate.static import shell
from smtpgate.static.facts import Enablement, Package
from smtpgate.static.fs import RootFS, join, split
from smtpgate.static.services import mta_by_command

APP_ROOTS = ("/app", "/srv", "/opt", "/home", "/root", "/usr/src", "/var/www", "/workspace", "/code", "/usr/app",
             "/usr/local/app", "/usr/local/src", "/data")
SITE_GLOBS = (
    "/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages", "/usr/lib/python3*/dist-packages",
    "/usr/local/lib/python3*/site-packages", "/usr/local/lib/python3*/dist-packages",
    "/usr/lib64/python3*/site-packages", "/usr/local/lib64/python3*/site-packages",
    "/opt/conda/lib/python3*/site-packages", "/root/.local/lib/python3*/site-packages",
    "/home/*/.local/lib/python3*/site-packages",
)
NODE_GLOBS = ("/usr/lib/node_modules", "/usr/local/lib/node_modules",
              "/usr/local/share/.config/yarn/global/node_modules", "/root/.npm-global/lib/node_modules")
DEBIAN_NODE = "/usr/share/nodejs"  # Debian's node-* packages: /usr/share/nodejs/<name>/package.json
GEM_GLOBS = (
    "/usr/local/bundle/specifications", "/usr/local/lib/ruby/gems/*/specifications",
    "/usr/lib/ruby/gems/*/specifications", "/var/lib/gems/*/specifications",
    "/usr/share/rubygems-integration/*/specifications", "/usr/lib/*-linux-gnu/rubygems-integration/*/specifications",
    "/root/.gem/ruby/*/specifications", "/home/*/.gem/ruby/*/specifications",
    "/home/*/.local/share/gem/ruby/*/specifications",
)
JAR_DIRS = ("/usr/share/java", "/usr/local/lib", "/usr/lib/jvm/lib")

WALK_DEPTH = 6  # /opt/<app>/lib/python3.11/site-packages is 4 deep, /home/<user>/<app>/node_modules 3
MAX_ENTRIES = 4000  # names looked at per directory
MAX_DIRS = 20_000  # directories listed in one search
MAX_NESTED = 3  # node_modules inside packages inside node_modules...
TIME_BUDGET = 10.0  # seconds for one search
JAR_READS = 40  # jars opened (bounded by the RootFS file limit each)
POM_BYTES = 64 << 10
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".cache", "_cacache", ".npm", ".yarn-cache"})
_VERSION_HEAD = re.compile(r"^\d")
_GEMSPEC_NAME = re.compile(r"""\.name\s*=\s*["']([^"']+)["']""")


def normal_pypi(name: str) -> str:
    """PEP 503: `Salmon_Mail` and `salmon.mail` are `salmon-mail`."""
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def known() -> dict[str, dict[str, str]]:
    """ecosystem -> {package name (normalised) -> registry id}, from the registry (computed once)."""
    out: dict[str, dict[str, str]] = {"npm": {}, "pypi": {}, "gem": {}, "jar": {}}
    for mta in software.all_mtas():
        for spec in mta.lang_packages:
            eco, _, name = spec.partition(":")
            name = normal_pypi(name) if eco == "pypi" else name.lower()
            out.setdefault(eco, {}).setdefault(name, mta.id)
    return out


@dataclass
class _Search:
    """One bounded search of a root filesystem."""

    fs: RootFS
    names: dict[str, dict[str, str]]
    problems: list[str]
    deadline: float
    found: list[Package] = field(default_factory=list)
    seen_dirs: set[str] = field(default_factory=set)
    dirs: int = 0
    jar_reads: int = 0
    big_jars: int = 0
    stopped: str = ""

    def out_of_budget(self) -> bool:
        if not self.stopped:
            if time.monotonic() > self.deadline:
                self.stopped = f"the time budget ({TIME_BUDGET:g} s) ran out"
            elif self.dirs > MAX_DIRS:
                self.stopped = f"the directory cap ({MAX_DIRS}) was reached"
        return bool(self.stopped)

    def listdir(self, path: str) -> list[str]:
        """A listing that is no cut of the view: this search only looks around (a 50 000-file
        upload directory under /srv is not an image smtpgate cannot judge); what it skipped it
        says in the problems. Running out of the whole read's time budget stays a cut."""
        self.dirs += 1
        fs = self.fs
        complete, cuts, problems = fs.complete, len(fs.cuts), len(fs.problems)
        names = fs.listdir(path)
        if len(fs.cuts) > cuts and not fs.out_of_time():
            del fs.cuts[cuts:]
            del fs.problems[problems:]
            fs.complete = complete
            self.problems.append(f"{path}: more entries than the listing cap, only the first {len(names)} "
                                 "searched for language packages")
        if len(names) > MAX_ENTRIES:
            self.problems.append(f"{path}: {len(names)} entries, only the first {MAX_ENTRIES} searched for "
                                 "language packages")
            names = names[:MAX_ENTRIES]
        return names

    def add(self, mta_id: str, name: str, version: str, eco: str, path: str) -> None:
        if not any(p.path == path and p.name == name for p in self.found):
            self.found.append(Package(mta_id, name, version or "?", eco, path))


def installed_lang_packages(fs: RootFS, problems: list[str], workdir: str = "") -> list[Package]:
    """Every language-ecosystem package of a known SMTP server, with its file and version."""
    search = _Search(fs, known(), problems, time.monotonic() + TIME_BUDGET)
    for pattern in SITE_GLOBS:
        for path in fs.glob(pattern):
            _site_packages(search, path)
    for pattern in NODE_GLOBS:
        for path in fs.glob(pattern):
            _node_modules(search, path, 0)
    _debian_node(search)
    for pattern in GEM_GLOBS:
        for path in fs.glob(pattern):
            _gem_specs(search, path)
    for path in JAR_DIRS:
        _jar_dir(search, path)
    roots = [*APP_ROOTS, *([workdir] if workdir.startswith("/") and workdir != "/" else [])]
    for root in dict.fromkeys(roots):
        if search.out_of_budget():
            break
        _walk(search, root)
    if search.stopped:
        problems.append(f"language packages: the search stopped early ({search.stopped}); packages in "
                        "directories not reached were not seen")
    if search.big_jars:
        problems.append(f"{search.big_jars} jar(s) over the {fs.limits.file_bytes}-byte read limit were judged by "
                        "their file name only")
    return search.found


def _walk(search: _Search, root: str) -> None:
    """Breadth-first from root: each directory is classified, ecosystem directories are read, not walked into."""
    fs = search.fs
    level = [root] if fs.isdir(root) else []
    for depth in range(WALK_DEPTH + 1):
        nxt: list[str] = []
        for base in level:
            if search.out_of_budget():
                return
            real = fs.resolve(base)
            if real is None or real in search.seen_dirs:
                continue
            search.seen_dirs.add(real)
            names = search.listdir(base)
            if "pyvenv.cfg" in names:
                for site in fs.glob(f"{base}/lib/python3*/site-packages"):
                    _site_packages(search, site)
            for name in names:
                path = join([*split(base), name])
                if name.endswith((".jar", ".war", ".ear")):
                    _jar(search, path)
                    continue
                node = fs.stat(path, follow=False)
                if node is None or node.kind != "dir" or name in SKIP_DIRS:
                    continue
                if name == "node_modules":
                    _node_modules(search, path, 0)
                elif name in ("site-packages", "dist-packages"):
                    _site_packages(search, path)
                elif name == "specifications" and fs.isdir(f"{base}/gems"):
                    _gem_specs(search, path)
                elif depth < WALK_DEPTH:
                    nxt.append(path)
        level = nxt


# -- npm -------------------------------------------------------------------------


def _node_modules(search: _Search, nm: str, depth: int) -> None:
    fs = search.fs
    real = fs.resolve(nm)
    if real is None or real in search.seen_dirs or search.out_of_budget():
        return
    search.seen_dirs.add(real)
    names = search.listdir(nm)
    wanted = search.names["npm"]
    present = {n.lower(): n for n in names}
    for name, mta_id in wanted.items():
        scope, _, base = name.rpartition("/")
        if scope:
            if scope in present and base in {n.lower() for n in search.listdir(f"{nm}/{present[scope]}")}:
                _package_json(search, f"{nm}/{present[scope]}/{base}", name, mta_id)
        elif name in present:
            _package_json(search, f"{nm}/{present[name]}", name, mta_id)
    if ".pnpm" in names:
        for entry in search.listdir(f"{nm}/.pnpm"):
            pname = entry.rsplit("@", 1)[0].replace("+", "/").lower() if "@" in entry[1:] else ""
            if pname in wanted:
                _package_json(search, f"{nm}/.pnpm/{entry}/node_modules/{pname}", pname, wanted[pname])
    if depth >= MAX_NESTED:
        return
    for name in names:
        if name.startswith("."):
            continue
        scoped = name.startswith("@")
        inner = [f"{nm}/{name}/{n}" for n in search.listdir(f"{nm}/{name}")] if scoped else [f"{nm}/{name}"]
        for pkg in inner:
            if search.out_of_budget():
                return
            if fs.isdir(f"{pkg}/node_modules"):
                _node_modules(search, f"{pkg}/node_modules", depth + 1)


def _debian_node(search: _Search) -> None:
    fs = search.fs
    for name, mta_id in search.names["npm"].items():
        path = f"{DEBIAN_NODE}/{name}"
        if fs.isdir(path):
            _package_json(search, path, name, mta_id)


def _package_json(search: _Search, pkg: str, name: str, mta_id: str) -> None:
    """Record the package when its package.json names it (a directory of that name alone is not enough)."""
    path = f"{pkg}/package.json"
    text = search.fs.text(path)
    if text is None:
        return
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        search.problems.append(f"{path}: not valid JSON; ignored")
        return
    if not isinstance(data, dict) or str(data.get("name", "")).lower() != name:
        return
    search.add(mta_id, name, str(data.get("version", "?"))[:64], "npm", path)


# -- Python ----------------------------------------------------------------------


def _site_packages(search: _Search, site: str) -> None:
    fs = search.fs
    real = fs.resolve(site)
    if real is None or real in search.seen_dirs or search.out_of_budget():
        return
    search.seen_dirs.add(real)
    wanted = search.names["pypi"]
    for entry in search.listdir(site):
        for suffix in (".dist-info", ".egg-info"):
            if not entry.endswith(suffix):
                continue
            stem = entry[: -len(suffix)]
            name, _, rest = stem.partition("-")
            mta_id = wanted.get(normal_pypi(name))
            if mta_id is None:
                continue
            path = f"{site}/{entry}"
            meta = path if fs.isfile(path) else f"{path}/{'METADATA' if suffix == '.dist-info' else 'PKG-INFO'}"
            fields = _metadata(fs.text(meta) or "")
            if fields.get("name") and normal_pypi(fields["name"]) != normal_pypi(name):
                continue
            version = fields.get("version") or rest.split("-")[0]
            search.add(mta_id, normal_pypi(name), version[:64], "pypi", meta if fs.isfile(meta) else path)


def _metadata(text: str) -> dict[str, str]:
    """Name and Version of a core-metadata file (RFC 822 headers up to the first blank line)."""
    out: dict[str, str] = {}
    for line in text[:65536].split("\n"):
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("name", "version"):
            out.setdefault(key.strip().lower(), value.strip())
    return out


# -- RubyGems --------------------------------------------------------------------


def _gem_specs(search: _Search, specs: str) -> None:
    fs = search.fs
    real = fs.resolve(specs)
    if real is None or real in search.seen_dirs or search.out_of_budget():
        return
    search.seen_dirs.add(real)
    wanted = search.names["gem"]
    for entry in search.listdir(specs):
        if not entry.endswith(".gemspec"):
            continue
        name, version = gem_name_version(entry[: -len(".gemspec")])
        mta_id = wanted.get(name.lower())
        if mta_id is None:
            continue
        path = f"{specs}/{entry}"
        declared = _GEMSPEC_NAME.search((fs.text(path) or "")[:65536])
        if declared is not None and declared.group(1).lower() != name.lower():
            continue
        search.add(mta_id, name.lower(), version, "gem", path)


def gem_name_version(stem: str) -> tuple[str, str]:
    """`mailcatcher-0.10.0` -> (mailcatcher, 0.10.0); `nokogiri-1.16.0-x86_64-linux` -> (nokogiri, 1.16.0)."""
    parts = stem.split("-")
    for i in range(1, len(parts)):
        if _VERSION_HEAD.match(parts[i]):
            return "-".join(parts[:i]), parts[i]
    return stem, "?"


# -- jars ------------------------------------------------------------------------


def _jar_dir(search: _Search, path: str) -> None:
    if not search.fs.isdir(path):
        return
    for name in search.listdir(path):
        if name.endswith((".jar", ".war", ".ear")):
            _jar(search, f"{path}/{name}")


def jar_artifact(file_name: str, wanted: dict[str, str]) -> tuple[str, str, str] | None:
    """(registry id, artifact, version) when a jar's file name starts with a known artifact id."""
    base = file_name.rsplit("/", 1)[-1].lower()
    for prefix, mta_id in wanted.items():
        if base.startswith(prefix) and base[len(prefix): len(prefix) + 1] in ("-", "."):
            version = re.search(r"-(\d[\w.+-]*?)\.(?:jar|war|ear)$", base)
            artifact = base.rsplit(".", 1)[0]
            if version is not None:
                artifact = artifact[: version.start()]
            return mta_id, artifact, version.group(1) if version else "?"
    return None


def _jar(search: _Search, path: str) -> None:
    fs = search.fs
    wanted = search.names["jar"]
    hit = jar_artifact(path, wanted)
    if hit is not None:
        search.add(hit[0], hit[1], hit[2], "jar", path)
        return
    node = fs.stat(path)
    if node is None or node.kind != "file" or search.jar_reads >= JAR_READS:
        return
    if node.size > fs.limits.file_bytes:
        search.big_jars += 1
        return
    search.jar_reads += 1
    data = fs.read(path)
    if data is None:
        return
    for mta_id, artifact, version, inner in jar_contents(data, wanted):
        search.add(mta_id, artifact, version, "jar", f"{path}!/{inner}")


def jar_contents(data: bytes, wanted: dict[str, str]) -> Iterator[tuple[str, str, str, str]]:
    """(registry id, artifact, version, entry) for the known artifacts a jar carries: its Maven
    pom.properties, and the jars nested in it (Spring Boot's BOOT-INF/lib, WEB-INF/lib, lib/)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        return
    with archive:
        for info in archive.infolist()[:100_000]:
            name = info.filename
            if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
                parts = name.split("/")
                artifact = parts[3] if len(parts) == 5 else ""
                hit = jar_artifact(f"{artifact}.jar", wanted) if artifact else None
                if hit is not None and info.file_size <= POM_BYTES:
                    yield hit[0], artifact, _pom_version(archive, info), name
            elif name.endswith(".jar"):
                hit = jar_artifact(name, wanted)
                if hit is not None:
                    yield hit[0], hit[1], hit[2], name


def _pom_version(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    try:
        with archive.open(info) as fh:
            text = fh.read(POM_BYTES).decode("utf-8", "replace")
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError, EOFError):
        return "?"
    found = re.search(r"^version\s*=\s*(\S+)", text, re.MULTILINE)
    return found.group(1)[:64] if found else "?"


# -- the image command runs one of them ---------------------------------------------


@dataclass(frozen=True)
class ScriptHit:
    """A script the command runs imports (or requires) a known SMTP server library."""

    mta: Mta
    path: str
    line: int
    text: str  # the import line


_SHEBANG_DIRS = ("/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/sbin")
_PYTHON = re.compile(r"^(?:python|pypy)[\d.]*$")
_NODE = {"node", "nodejs", "bun", "ts-node", "tsx"}
_RUBY = {"ruby", "jruby"}
_PY_VALUE_OPTS = {"-W", "-X", "-Q"}
_NODE_VALUE_OPTS = {"-r", "--require", "--import", "--loader", "--experimental-loader", "--env-file", "--title"}
SCRIPT_BYTES = 512 << 10
MAX_SCRIPT_FILES = 12
MAX_IMPORT_DEPTH = 2
_PY_LOCAL = re.compile(r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import|import[ \t]+([\w.]+))", re.MULTILINE)
_JS_LOCAL = re.compile(
    r"""(?:\brequire[ \t]*\(|\bimport[ \t]*\(|\bfrom[ \t]+|^[ \t]*import[ \t]+)[ \t]*['"`](\.{1,2}/[^'"`]+)['"`]""",
    re.MULTILINE)


def interpreter_script(fs: RootFS, argv: tuple[str, ...], workdir: str) -> tuple[str, str] | None:
    """(language, script path in the image) for `python app.py`, `node server.js`, `python -m pkg`, or a
    script run by its own `#!` line (`/usr/local/bin/app` starting `#!/usr/bin/env python3`)."""
    if not argv:
        return None
    name = argv[0].rsplit("/", 1)[-1]
    lang = "python" if _PYTHON.match(name) else "js" if name in _NODE else "ruby" if name in _RUBY else ""
    if lang:
        target = _script_arg(argv[1:], lang)
        if target is None:
            return None
        kind, value = target
        if kind == "module":
            return _module_file(fs, value, workdir)
        path = _absolute(value, workdir)
        return (lang, path) if lang != "js" else _js_file(fs, path)
    own = [_absolute(argv[0], workdir)] if "/" in argv[0] else [f"{d}/{argv[0]}" for d in _SHEBANG_DIRS]
    for candidate in own:
        head = fs.head(candidate, 128) or b""
        if head.startswith(b"#!"):
            words = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
            names = [w.rsplit("/", 1)[-1] for w in words[:2]]
            if any(_PYTHON.match(n) for n in names):
                return "python", candidate
            if any(n in _NODE for n in names):
                return "js", candidate
            if any(n in _RUBY for n in names):
                return "ruby", candidate
    return None


def _script_arg(args: tuple[str, ...], lang: str) -> tuple[str, str] | None:
    """("script", path) or ("module", name): the first argument an interpreter runs."""
    values = _PY_VALUE_OPTS if lang == "python" else _NODE_VALUE_OPTS
    i = 0
    while i < len(args):
        arg = args[i]
        if lang == "python" and arg == "-m" and i + 1 < len(args):
            return "module", args[i + 1]
        if lang == "python" and arg.startswith("-m") and len(arg) > 2:
            return "module", arg[2:]
        if arg in ("-c", "-e", "--eval", "-p", "--print"):
            return None  # inline code: judged by the command-line patterns only
        if arg in values:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return "script", arg
    return None


def _absolute(path: str, workdir: str) -> str:
    return path if path.startswith("/") else f"{workdir.rstrip('/') or ''}/{path}"


def _js_file(fs: RootFS, path: str) -> tuple[str, str] | None:
    for candidate in (path, f"{path}.js", f"{path}.cjs", f"{path}.mjs", f"{path}/index.js"):
        if fs.isfile(candidate):
            return "js", candidate
    return None


def _module_file(fs: RootFS, module: str, workdir: str) -> tuple[str, str] | None:
    base = _absolute(module.replace(".", "/"), workdir or "/")
    for candidate in (f"{base}.py", f"{base}/__main__.py"):
        if fs.isfile(candidate):
            return "python", candidate
    return None


def script_server(fs: RootFS, lang: str, script: str) -> ScriptHit | None:
    """The SMTP server library a script (or the local modules it imports, two levels) uses."""
    todo = [(script, 0)]
    seen: set[str] = set()
    mtas = [m for m in software.all_mtas() if m.imports]
    while todo and len(seen) < MAX_SCRIPT_FILES:
        path, depth = todo.pop(0)
        if path in seen:
            continue
        seen.add(path)
        text = (fs.text(path) or "")[:SCRIPT_BYTES]
        for mta in mtas:
            for pat in mta.imports:
                found = pat.search(text)
                if found:
                    line = text.count("\n", 0, found.start()) + 1
                    start = text.rfind("\n", 0, found.start()) + 1
                    end = text.find("\n", found.end())
                    return ScriptHit(mta, path, line, text[start: end if end >= 0 else None].strip()[:200])
        if depth < MAX_IMPORT_DEPTH:
            todo += [(p, depth + 1) for p in _local_imports(fs, lang, path, text)]
    return None


def _local_imports(fs: RootFS, lang: str, path: str, text: str) -> list[str]:
    """Files of the same application a script imports: `require("./mail")`, `from . import mail`, `import mail`."""
    here = path.rsplit("/", 1)[0] or "/"
    out: list[str] = []
    if lang == "js":
        for found in _JS_LOCAL.finditer(text):
            hit = _js_file(fs, join(_normalise(split(here) + split(found.group(1)))))
            if hit is not None:
                out.append(hit[1])
    elif lang == "python":
        for found in _PY_LOCAL.finditer(text):
            module = (found.group(1) or found.group(2) or "").lstrip(".")
            if not module:
                continue
            base = f"{here}/{module.replace('.', '/')}"
            for candidate in (f"{base}.py", f"{base}/__init__.py"):
                if fs.isfile(candidate):
                    out.append(candidate)
                    break
    return out[:MAX_SCRIPT_FILES]


def _normalise(parts: list[str]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part == "..":
            if out:
                out.pop()
        else:
            out.append(part)
    return out


_PM_RUN = {"npm", "yarn", "pnpm", "bun"}


def package_script(fs: RootFS, argv: tuple[str, ...], workdir: str) -> str | None:
    """The command `npm start` / `npm run X` / `yarn X` / `pnpm start` runs, from WORKDIR's package.json
    (npm's default for start is `node server.js` when server.js exists)."""
    pm = argv[0].rsplit("/", 1)[-1] if argv else ""
    args = [a for a in argv[1:] if not a.startswith("-")]
    if pm not in _PM_RUN or not args:
        return None
    if args[0] in ("run", "run-script") and len(args) > 1:
        script = args[1]
    elif pm in ("yarn", "pnpm") or (pm == "npm" and args[0] in ("start", "test")):
        script = args[0]
    else:
        return None
    base = workdir.rstrip("/") or ""
    try:
        data = json.loads(fs.text(f"{base}/package.json") or "{}")
    except (ValueError, RecursionError):
        return None
    scripts = data.get("scripts") if isinstance(data, dict) else None
    command = scripts.get(script) if isinstance(scripts, dict) else None
    if isinstance(command, str) and command.strip():
        return command[:4096]
    if script == "start" and fs.isfile(f"{base}/server.js"):
        return "node server.js"
    return None


@dataclass(frozen=True)
class CommandHit:
    """Why a command runs a known SMTP server that its own words do not name."""

    mta: Mta
    script: str  # the script the interpreter runs
    path: str  # the file that imports the server library
    line: int
    text: str  # what was found there


MAX_PM_DEPTH = 3


def command_server(fs: RootFS, argv: tuple[str, ...], workdir: str, env: dict[str, str],
                   depth: int = 0) -> CommandHit | None:
    """A known SMTP server that `argv` runs through a script (`node server.js` requiring
    smtp-server, `python app.py` importing aiosmtpd) or a package-manager script (`npm start`)."""
    inner = package_script(fs, argv, workdir)
    if inner is not None and depth < MAX_PM_DEPTH:
        where = f"{workdir.rstrip('/')}/package.json"
        for cmd in shell.commands(inner, [], where, env):
            words, _ = shell.unwrap(list(cmd.argv))
            text = " ".join(words)
            mta = mta_by_command(text)
            if mta is not None:
                return CommandHit(mta, text, where, 0, f"scripts runs `{text[:200]}`")
            hit = command_server(fs, tuple(words), workdir, env, depth + 1)
            if hit is not None:
                return hit
        return None
    jar = java_server(fs, argv, workdir)
    if jar is not None:
        return jar
    found = interpreter_script(fs, argv, workdir)
    if found is None:
        return None
    lang, script = found
    used = script_server(fs, lang, script)
    if used is None:
        return None
    return CommandHit(used.mta, script, used.path, used.line, used.text)


def java_server(fs: RootFS, argv: tuple[str, ...], workdir: str) -> CommandHit | None:
    """`java [opts] -jar app.jar` / `java -cp a.jar:lib/* Main`: a known SMTP server among the jars it runs,
    by file name, or inside a jar (Maven pom.properties, nested jars) not over the file limit."""
    if not argv or argv[0].rsplit("/", 1)[-1] not in ("java", "javaw"):
        return None
    jars: list[str] = []
    for i, arg in enumerate(argv[1:-1], 1):
        if arg == "-jar":
            jars.append(argv[i + 1])
        elif arg in ("-cp", "-classpath", "--class-path"):
            jars += [p for p in argv[i + 1].split(":") if p.endswith((".jar", ".war"))]
    wanted = known()["jar"]
    for jar in jars[:JAR_READS]:
        path = _absolute(jar, workdir or "/")
        hit = jar_artifact(path, wanted)
        if hit is not None:
            return CommandHit(software.get(hit[0]), path, path, 0, f"the jar {hit[1]} {hit[2]}")
        node = fs.stat(path)
        data = fs.read(path) if node is not None and node.kind == "file" and node.size <= fs.limits.file_bytes else None
        for mta_id, artifact, version, inner in jar_contents(data or b"", wanted):
            return CommandHit(software.get(mta_id), path, f"{path}!/{inner}", 0, f"{artifact} {version} inside the jar")
    return None


def script_enablement(hit: CommandHit, command: str, origin: str, late: str = "") -> Enablement:
    """The image command runs a known SMTP server through a script: the evidence names the import."""
    where = f"{hit.path}:{hit.line}" if hit.line else hit.path
    return Enablement(hit.mta.id, "command",
                      f"the image command runs {hit.mta.name}: `{command[:200]}` runs {hit.script}, and {where} "
                      f"has `{hit.text}` ({origin}{late})", hit.path, hit.line or None, by_command=True,
                      runs=hit.script)


# -- what a tar stream must keep for these readers (smtpgate.static.tarfs) -----------------

STREAM_SCRIPT_BYTES = 64 << 10
_SCRIPT_SUFFIXES = (".py", ".js", ".mjs", ".cjs")
_VENDORED = ("/node_modules/", "/site-packages/", "/dist-packages/", "/.git/", "/vendor/")


def keep_from_stream(path: str, size: int) -> bool:
    """Keep this file's content from a tar stream: a manifest of a known server package
    (package.json, METADATA, PKG-INFO, gemspec), an application's own package.json, or an
    application script (.py/.js, at most 64 KiB, at most two directories below an
    application root) that the image command may run. A tar stream is read once, so
    what is not kept here cannot be read later."""
    if size > STREAM_SCRIPT_BYTES * 16:
        return False
    parts = split(path)
    base = parts[-1] if parts else ""
    names = known()
    if base == "package.json" and len(parts) >= 2:
        name = parts[-2].lower()
        scoped = f"{parts[-3].lower()}/{name}" if len(parts) >= 3 and parts[-3].startswith("@") else ""
        if name in names["npm"] or scoped in names["npm"]:
            return True
        return "/node_modules/" not in path and size <= STREAM_SCRIPT_BYTES
    if base in ("METADATA", "PKG-INFO") and len(parts) >= 2:
        return _dist_name(parts[-2]) in names["pypi"]
    if base.endswith(".egg-info"):
        return _dist_name(base) in names["pypi"]
    if base.endswith(".gemspec"):
        return gem_name_version(base[: -len(".gemspec")])[0].lower() in names["gem"]
    if base.endswith(_SCRIPT_SUFFIXES) and size <= STREAM_SCRIPT_BYTES and not any(v in path for v in _VENDORED):
        return any(path.startswith(f"{root}/") and len(parts) - len(split(root)) <= 3 for root in APP_ROOTS)
    return False


def _dist_name(entry: str) -> str:
    for suffix in (".dist-info", ".egg-info"):
        if entry.endswith(suffix):
            return normal_pypi(entry[: -len(suffix)].partition("-")[0])
    return ""
