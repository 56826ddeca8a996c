"""The ``voxlive`` command line: parsing, dispatch and the commands themselves."""
