"""Placeholder command line; replaced in the next commit."""


def main() -> int:
    print("murmurate: work in progress")
    return 0
