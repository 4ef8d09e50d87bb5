"""The offline licence: the signed file, the machine binding, the state the appliance is in, and the vendor's issuing tool."""
