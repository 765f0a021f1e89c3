"""MLLP for HL7 v2: framing (pure, no sockets) and acknowledgements. Shared by lis_device and pacs."""
