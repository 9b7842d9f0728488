"""`swimbench doctor`: is this machine ready to run swimbench? Its environment, every op's Triton kernel
against its reference on this device, and every command run once at tiny sizes (docs/doctor.md)."""
