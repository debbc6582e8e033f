"""One module per page of the app; each has `show(options)`."""
