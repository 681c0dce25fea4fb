#!/usr/bin/python3
"""Makes the DXF fixtures of the extractor's tests with ezdxf, a real DXF
writer: one drawing saved as ASCII and as binary DXF, for AutoCAD 2018
(2-byte group codes in binary) and for R12 (1-byte group codes), so the tests
can check that both encodings give the same summary. The tests read the
committed files and need no ezdxf.

Needs Debian's python3-ezdxf (apt-get install -y python3-ezdxf).
Run it in this directory: /usr/bin/python3 make-fixtures.py
"""
import ezdxf


def drawing(version):
    doc = ezdxf.new(version)
    # Fixed header values, so that running this again gives the same files
    # as far as ezdxf allows.
    doc.header["$TDCREATE"] = 2460000.5
    doc.header["$TDUPDATE"] = 2460000.5
    msp = doc.modelspace()
    msp.add_line((0, 0), (100, 0))
    msp.add_line((100, 0), (100, 50))
    msp.add_line((100, 50), (0, 50))
    msp.add_circle((50, 25), radius=10)
    msp.add_arc((50, 25), radius=20, start_angle=0, end_angle=180)
    msp.add_text("Floor plan, level 1", dxfattribs={"height": 2.5}).set_placement((5, 55))
    # An old-style POLYLINE is written as POLYLINE, VERTEX… and SEQEND
    # records, which the summary counts as entities too.
    msp.add_polyline2d([(0, 60), (20, 70), (40, 60)])
    if version != "R12":
        msp.add_lwpolyline([(0, 80), (20, 90), (40, 80)])
    return doc


for version, name in (("R2018", "plan-2018"), ("R12", "plan-r12")):
    doc = drawing(version)
    doc.saveas(name + "-ascii.dxf")
    doc.saveas(name + "-binary.dxf", fmt="bin")
