"""``python -m kagg`` runs the same CLI as the ``kagg`` console script."""

from kagg.cli import main

if __name__ == "__main__":
    main()
