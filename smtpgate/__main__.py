"""``python -m smtpgate`` works like the ``smtpgate`` command."""

from smtpgate.cli import run

if __name__ == "__main__":
    run()
