"""python -m vae_keras.exercises OUT_DIR [NOTEBOOK ...]: writes the student versions."""

import argparse
import glob
import sys

from vae_keras.exercises.student import write_student_versions


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m vae_keras.exercises",
        description="Writes the student version of the notebooks: every solution replaced by "
        "`...`, the outputs of the solution and check cells cleared.",
    )
    parser.add_argument("out_dir", help="folder to write the student notebooks into")
    parser.add_argument(
        "notebooks", nargs="*", help="notebooks to convert (default: notebooks/*.ipynb)"
    )
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(glob.glob("notebooks/*.ipynb"))
    if not paths:
        parser.error("no notebooks given and none in notebooks/; run from the repository root")
    for path in write_student_versions(args.out_dir, paths):
        print(path)


if __name__ == "__main__":
    sys.exit(main())
