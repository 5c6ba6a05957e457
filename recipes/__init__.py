"""Training recipes written as Python: values only, no logic beyond choosing them."""
