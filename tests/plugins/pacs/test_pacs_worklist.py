"""The DICOM Modality Worklist: items from exam orders, queried by a real DICOM association."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

from plugins.pacs.model import ExamOrder
from plugins.pacs.worklist import Worklist, WorklistScp
from tests.plugins.pacs.conftest import exam_order


def order(accession: str, action: str = "new", **overrides: object) -> ExamOrder:
    return ExamOrder.model_validate(exam_order(accession, action, **overrides))


@pytest.fixture
def scp() -> Iterator[WorklistScp]:
    worklist = Worklist(default_station_ae="ANY_AE")
    worklist.apply(order("ACC9101"))
    worklist.apply(order("ACC9102", modality="MR", station_ae="MR_ROOM1", scheduled_at="2026-11-24T14:00:00"))
    worklist.apply(order("ACC9103", modality="DX", station_ae=None, scheduled_at="2026-11-23T08:00:00"))
    server = WorklistScp(worklist)
    server.start()
    yield server
    server.stop()


def query(**keys: str) -> Dataset:
    identifier = Dataset()
    identifier.PatientName = ""
    identifier.PatientID = keys.get("PatientID", "")
    identifier.AccessionNumber = keys.get("AccessionNumber", "")
    identifier.StudyInstanceUID = ""
    step = Dataset()
    step.Modality = keys.get("Modality", "")
    step.ScheduledStationAETitle = keys.get("ScheduledStationAETitle", "")
    step.ScheduledProcedureStepStartDate = keys.get("Date", "")
    step.ScheduledProcedureStepID = ""
    identifier.ScheduledProcedureStepSequence = [step]
    return identifier


def find(port: int, identifier: Dataset) -> list[Dataset]:
    """One C-FIND over a new association, as a modality asks."""
    ae = AE(ae_title="CT_ROOM1")
    ae.add_requested_context(ModalityWorklistInformationFind)
    association = ae.associate("127.0.0.1", port, ae_title="HISBRIDGE_MWL")
    assert association.is_established
    try:
        answers = []
        for status, found in association.send_c_find(identifier, ModalityWorklistInformationFind):
            assert status.Status in (0xFF00, 0x0000), hex(status.Status)
            if found is not None:
                answers.append(found)
        return answers
    finally:
        association.release()


async def run_find(scp: WorklistScp, **keys: str) -> list[Dataset]:
    return await asyncio.to_thread(find, scp.port, query(**keys))


@pytest.mark.parametrize(
    ("keys", "accessions"),
    [
        ({}, ["ACC9101", "ACC9102", "ACC9103"]),
        ({"Modality": "CT"}, ["ACC9101"]),
        ({"ScheduledStationAETitle": "MR_ROOM1"}, ["ACC9102"]),
        ({"ScheduledStationAETitle": "ANY_AE"}, ["ACC9103"]),
        ({"Date": "20261123"}, ["ACC9101", "ACC9103"]),
        ({"Date": "20261124-20261130"}, ["ACC9102"]),
        ({"AccessionNumber": "ACC9102"}, ["ACC9102"]),
        ({"PatientID": "P-TEST-0001", "Modality": "DX"}, ["ACC9103"]),
        ({"AccessionNumber": "ACC91*"}, ["ACC9101", "ACC9102", "ACC9103"]),
        ({"Modality": "US"}, []),
    ],
)
async def test_matching_keys(scp: WorklistScp, keys: dict[str, str], accessions: list[str]) -> None:
    found = await run_find(scp, **keys)
    assert sorted(item.AccessionNumber for item in found) == accessions


async def test_an_answer_carries_what_was_asked(scp: WorklistScp) -> None:
    (item,) = await run_find(scp, AccessionNumber="ACC9101")
    assert str(item.PatientName) == "测试患者甲" and item.PatientID == "P-TEST-0001"
    assert item.StudyInstanceUID.startswith("2.25.")
    step = item.ScheduledProcedureStepSequence[0]
    assert (step.Modality, step.ScheduledStationAETitle, step.ScheduledProcedureStepStartDate) == (
        "CT", "CT_ROOM1", "20261123",
    )
    assert step.ScheduledProcedureStepID == "SPS9101"
    assert "ScheduledProcedureStepDescription" not in step  # not asked for


async def test_cancel_and_change_update_the_worklist(scp: WorklistScp) -> None:
    scp.worklist.apply(ExamOrder.model_validate({"action": "cancel", "accession_number": "ACC9101"}))
    scp.worklist.apply(order("ACC9102", "change", modality="CT", station_ae="CT_ROOM2"))
    found = await run_find(scp, Modality="CT")
    assert [(i.AccessionNumber, i.ScheduledProcedureStepSequence[0].ScheduledStationAETitle) for i in found] == [
        ("ACC9102", "CT_ROOM2"),
    ]
