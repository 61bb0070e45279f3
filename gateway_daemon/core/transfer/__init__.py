"""Moving the database in and out: our own export format (`native`), IAG 5's (`iag5`), and what both
read the same way (`documents`)."""
