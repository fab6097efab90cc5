"""Ship the committed records with the package: results/*.json become companion/records/*.json.

Everything else about the package is in pyproject.toml. The chapters read these records when no
checkout is around (an installed wheel on Colab); the checkout's results/ stays the one source.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithRecords(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads results/ from the checkout itself
        records = sorted((Path(__file__).resolve().parent / "results").glob("*.json"))
        if not records:
            raise SystemExit("results/*.json not found: build the package from a full checkout (or its sdist)")
        target = Path(self.build_lib) / "companion" / "records"
        target.mkdir(parents=True, exist_ok=True)
        for path in records:
            self.copy_file(str(path), str(target / path.name))


setup(cmdclass={"build_py": BuildPyWithRecords})
