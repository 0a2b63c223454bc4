print("rosepack")
