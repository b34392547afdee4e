"""Code shared by the gate and syncd: above all the signed T1 ticket format."""
