# Sourced by scripts/serve and scripts/test: make .venv and install hubbub into it,
# again only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "hubbub: creating a virtual environment in .venv" >&2
  "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.hubbub-installed"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)-${HUBBUB_EXTRAS:-test}"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "hubbub: installing dependencies into .venv" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[${HUBBUB_EXTRAS:-test}]"
  echo "$WANT" > "$STAMP"
fi
