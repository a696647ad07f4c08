"""`python -m bench`: the harness behind `make bench`."""

from bench.harness import main

main()
