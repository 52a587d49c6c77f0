"""PS3.15 Annex E, Table E.1-1 as data: the attributes and their de-identification actions.

Encoded by hand from DICOM PS3.15 2024c, Table E.1-1 "Application Level Confidentiality
Profile Attributes", Basic Profile column plus the "Retain Longitudinal Temporal Information
with Modified Dates" option column (``C`` = clean, i.e. shift the date; ``-`` = blank in the
standard, the Basic action applies). Each row: ``tag  basic-action  option  keyword``.

Actions: ``D`` replace with a non-empty dummy of the same VR, ``Z`` replace with an empty
value, ``X`` remove, ``K`` keep, ``C`` clean, ``U`` replace the UID consistently; compound
actions (``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``, ``X/Z/U*``) are resolved in
:mod:`medlens.privacy.profile`. Rows of the standard for attributes that can only occur in
DIMSE commands are kept for completeness. Anything the table does not list is handled by
the profile's safety rules (private tags, overlays, curves, unlisted PN/UI/DA/DT/TM).

The safe-private allow-list is a documented subset of PS3.15 Table E.3.10-1.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["EDITION", "SAFE_PRIVATE", "TABLE_E1_1", "Rule", "parse_table"]

EDITION = "PS3.15 2024c"


class Rule(NamedTuple):
    """One row of Table E.1-1."""

    tag: int
    keyword: str
    basic: str
    modified_dates: str  # "C" or "-" (Retain Longitudinal Temporal Information, Modified Dates)


_ROWS = """
0008,0050  Z       -  AccessionNumber
0018,4000  X       -  AcquisitionComments
0040,0555  X       -  AcquisitionContextSequence
0008,0022  X/Z     C  AcquisitionDate
0008,002A  X/Z/D   C  AcquisitionDateTime
0018,1400  X/D     -  AcquisitionDeviceProcessingDescription
0018,11BB  D       -  AcquisitionFieldOfViewLabel
0018,9424  X       -  AcquisitionProtocolDescription
0008,0032  X/Z     C  AcquisitionTime
0008,0017  U       -  AcquisitionUID
0040,4035  X       -  ActualHumanPerformersSequence
0010,21B0  X       -  AdditionalPatientHistory
0040,A353  X       -  AddressTrial
0038,0010  X       -  AdmissionID
0038,0020  X       C  AdmittingDate
0008,1084  X       -  AdmittingDiagnosesCodeSequence
0008,1080  X       -  AdmittingDiagnosesDescription
0038,0021  X       C  AdmittingTime
0000,1000  X       -  AffectedSOPInstanceUID
0010,2110  X       -  Allergies
4000,0010  X       -  Arbitrary
0400,0562  X       C  AttributeModificationDateTime
0040,A078  X       -  AuthorObserverSequence
0010,1081  X       -  BranchOfService
0018,1007  X       -  CassetteID
0040,0280  X       -  CommentsOnThePerformedProcedureStep
0020,9161  U       -  ConcatenationUID
3010,0006  U       -  ConceptualVolumeUID
0040,3001  X       -  ConfidentialityConstraintOnPatientDataDescription
3010,0013  U       -  ConstituentConceptualVolumeUID
0008,009D  X       -  ConsultingPhysicianIdentificationSequence
0008,009C  X       -  ConsultingPhysicianName
0040,0512  Z       -  ContainerIdentifier
0070,0086  X       -  ContentCreatorIdentificationCodeSequence
0070,0084  Z       -  ContentCreatorName
0008,0023  Z/D     C  ContentDate
0040,A730  X       -  ContentSequence
0008,0033  Z/D     C  ContentTime
0008,0107  D       C  ContextGroupLocalVersion
0008,0106  D       C  ContextGroupVersion
0018,0010  Z/D     -  ContrastBolusAgent
0018,1042  X       C  ContrastBolusStartTime
0018,1043  X       C  ContrastBolusStopTime
0018,A002  X       C  ContributionDateTime
0018,A003  X       -  ContributionDescription
0010,2150  X       -  CountryOfResidence
0008,9123  U       -  CreatorVersionUID
0038,0300  X       -  CurrentPatientLocation
0008,0025  X       C  CurveDate
0008,0035  X       C  CurveTime
0040,A07C  X       -  CustodialOrganizationSequence
FFFC,FFFC  X       -  DataSetTrailingPadding
0040,A121  D       C  Date
0040,A110  X       C  DateOfDocumentOrVerbalTransactionTrial
0018,1200  X       C  DateOfLastCalibration
0018,700C  X/D     C  DateOfLastDetectorCalibration
0018,1012  X       C  DateOfSecondaryCapture
0040,A120  D       C  DateTime
0018,9701  X       C  DecayCorrectionDateTime
0018,937F  X       -  DecompositionDescription
0008,2111  X       -  DerivationDescription
0018,700A  X/D     -  DetectorID
3010,001B  X       -  DeviceAlternateIdentifier
0050,0020  X       -  DeviceDescription
0018,1000  X/Z/D   -  DeviceSerialNumber
0018,1002  U       -  DeviceUID
0400,0105  X       C  DigitalSignatureDateTime
FFFA,FFFA  X       -  DigitalSignaturesSequence
0400,0100  X       -  DigitalSignatureUID
0020,9164  U       -  DimensionOrganizationUID
0038,0030  X       C  DischargeDate
0038,0040  X       -  DischargeDiagnosisDescription
0038,0032  X       C  DischargeTime
4008,011A  X       -  DistributionAddress
4008,0119  X       -  DistributionName
300A,0013  U       -  DoseReferenceUID
3010,006E  U       -  DosimetricObjectiveUID
0068,6226  X       C  EffectiveDateTime
0018,9517  X       C  EndAcquisitionDateTime
0010,2160  X       -  EthnicGroup
0018,9804  X       C  ExclusionStartDateTime
0008,0058  U       -  FailedSOPInstanceUIDList
0070,031A  U       -  FiducialUID
0040,2017  Z       -  FillerOrderNumberImagingServiceRequest
3008,0054  X       C  FirstTreatmentDate
0018,9074  D       C  FrameAcquisitionDateTime
0020,9158  X       -  FrameComments
0020,0052  U       -  FrameOfReferenceUID
0018,9151  D       C  FrameReferenceDateTime
0018,1008  X       -  GantryID
0018,1005  X       -  GeneratorID
0070,0001  D       -  GraphicAnnotationSequence
0018,1017  X       -  HardcopyDeviceManufacturer
0040,4037  X       -  HumanPerformerName
0040,4036  X       -  HumanPerformerOrganization
0088,0200  X       -  IconImageSequence
0008,4000  X       -  IdentifyingComments
0020,4000  X       -  ImageComments
0028,4000  X       -  ImagePresentationComments
0040,2400  X       -  ImagingServiceRequestComments
4008,0300  X       -  Impressions
0008,0015  X       C  InstanceCoercionDateTime
0008,0012  X/D     C  InstanceCreationDate
0008,0013  X/Z/D   C  InstanceCreationTime
0008,0014  U       -  InstanceCreatorUID
0008,0081  X       -  InstitutionAddress
0008,1040  X       -  InstitutionalDepartmentName
0008,1041  X       -  InstitutionalDepartmentTypeCodeSequence
0008,0082  X/Z/D   -  InstitutionCodeSequence
0008,0080  X/Z/D   -  InstitutionName
0018,9919  X       C  InstructionPerformedDateTime
0010,1050  X       -  InsurancePlanIdentification
0040,1011  X       -  IntendedRecipientsOfResultsIdentificationSequence
4008,0111  X       -  InterpretationApproverSequence
4008,010C  X       -  InterpretationAuthor
4008,0115  X       -  InterpretationDiagnosisDescription
4008,0202  X       -  InterpretationIDIssuer
4008,0102  X       -  InterpretationRecorder
4008,010B  X       -  InterpretationText
4008,010A  X       -  InterpretationTranscriber
0008,3010  U       -  IrradiationEventUID
0040,2004  X       C  IssueDateOfImagingServiceRequest
0038,0011  X       -  IssuerOfAdmissionID
0038,0014  X       -  IssuerOfAdmissionIDSequence
0010,0021  X       -  IssuerOfPatientID
0010,0024  X       -  IssuerOfPatientIDQualifiersSequence
0038,0061  X       -  IssuerOfServiceEpisodeID
0038,0064  X       -  IssuerOfServiceEpisodeIDSequence
0040,0513  Z       -  IssuerOfTheContainerIdentifierSequence
0040,0562  X       -  IssuerOfTheSpecimenIdentifierSequence
0040,2005  X       C  IssueTimeOfImagingServiceRequest
0028,1214  U       -  LargePaletteColorLookupTableUID
0010,21D0  X       C  LastMenstrualDate
0050,0021  X       -  LongDeviceDescription
0400,0404  X       -  MAC
0002,0003  U       -  MediaStorageSOPInstanceUID
0010,2000  X       -  MedicalAlerts
0010,1090  X       -  MedicalRecordLocator
0010,1080  X       -  MilitaryRank
0400,0550  X       -  ModifiedAttributesSequence
0020,3403  X       C  ModifiedImageDate
0020,3406  X       -  ModifiedImageDescription
0020,3405  X       C  ModifiedImageTime
0020,3401  X       -  ModifyingDeviceID
0400,0563  X       -  ModifyingSystem
3008,0056  X       C  MostRecentTreatmentDate
0008,1060  X       -  NameOfPhysiciansReadingStudy
0040,1010  X       -  NamesOfIntendedRecipientsOfResults
0040,A032  X/D     C  ObservationDateTime
0040,A192  X       C  ObservationDateTrial
0040,A402  U       -  ObservationSubjectUIDTrial
0040,A193  X       C  ObservationTimeTrial
0040,A171  U       -  ObservationUID
0010,2180  X       -  Occupation
0008,1072  X/D     -  OperatorIdentificationSequence
0008,1070  X/Z/D   -  OperatorsName
0040,2010  X       -  OrderCallbackPhoneNumber
0040,2011  X       -  OrderCallbackTelecomInformation
0040,2008  X       -  OrderEnteredBy
0040,2009  X       -  OrderEntererLocation
0400,0561  X       -  OriginalAttributesSequence
0010,1000  X       -  OtherPatientIDs
0010,1002  X       -  OtherPatientIDsSequence
0010,1001  X       -  OtherPatientNames
0008,0024  X       C  OverlayDate
0008,0034  X       C  OverlayTime
0028,1199  U       -  PaletteColorLookupTableUID
0040,A07A  X       -  ParticipantSequence
0040,A082  X       C  ParticipationDateTime
0010,1040  X       -  PatientAddress
0010,1010  X       -  PatientAge
0010,0035  X       -  PatientAlternativeCalendar
0010,0030  Z       C  PatientBirthDate
0010,0033  X       -  PatientBirthDateInAlternativeCalendar
0010,1005  X       -  PatientBirthName
0010,0032  X       C  PatientBirthTime
0010,4000  X       -  PatientComments
0010,0034  X       -  PatientDeathDateInAlternativeCalendar
0010,0020  Z       -  PatientID
0010,0050  X       -  PatientInsurancePlanCodeSequence
0010,1060  X       -  PatientMotherBirthName
0010,0010  Z       -  PatientName
0010,0101  X       -  PatientPrimaryLanguageCodeSequence
0010,0102  X       -  PatientPrimaryLanguageModifierCodeSequence
0010,21F0  X       -  PatientReligiousPreference
0010,0040  Z       -  PatientSex
0010,2203  X/Z     -  PatientSexNeutered
0010,1020  X       -  PatientSize
0038,0500  X       -  PatientState
0010,2155  X       -  PatientTelecomInformation
0010,2154  X       -  PatientTelephoneNumbers
0040,1004  X       -  PatientTransportArrangements
0010,1030  X       -  PatientWeight
0040,0243  X       -  PerformedLocation
0040,0254  X       -  PerformedProcedureStepDescription
0040,0250  X       C  PerformedProcedureStepEndDate
0040,4051  X       C  PerformedProcedureStepEndDateTime
0040,0251  X       C  PerformedProcedureStepEndTime
0040,0253  X       -  PerformedProcedureStepID
0040,0244  X       C  PerformedProcedureStepStartDate
0040,4050  X       C  PerformedProcedureStepStartDateTime
0040,0245  X       C  PerformedProcedureStepStartTime
0040,0241  X       -  PerformedStationAETitle
0040,4030  X       -  PerformedStationGeographicLocationCodeSequence
0040,0242  X       -  PerformedStationName
0040,4028  X       -  PerformedStationNameCodeSequence
0008,1052  X       -  PerformingPhysicianIdentificationSequence
0008,1050  X       -  PerformingPhysicianName
0040,1102  X       -  PersonAddress
0040,1101  D       -  PersonIdentificationCodeSequence
0040,A123  D       -  PersonName
0040,1104  X       -  PersonTelecomInformation
0040,1103  X       -  PersonTelephoneNumbers
4008,0114  X       -  PhysicianApprovingInterpretation
0008,1048  X       -  PhysiciansOfRecord
0008,1049  X       -  PhysiciansOfRecordIdentificationSequence
0008,1062  X       -  PhysiciansReadingStudyIdentificationSequence
0040,2016  Z       -  PlacerOrderNumberImagingServiceRequest
0018,1004  X       -  PlateID
0010,21C0  X       -  PregnancyStatus
0040,0012  X       -  PreMedication
0070,0082  D       C  PresentationCreationDate
0070,0083  D       C  PresentationCreationTime
0070,1101  U       -  PresentationDisplayCollectionUID
0070,1102  U       -  PresentationSequenceCollectionUID
0044,000B  X       C  ProductExpirationDateTime
0018,1030  X/D     -  ProtocolName
0008,1088  X       -  PyramidDescription
0008,0019  U       -  PyramidUID
0018,1078  X       C  RadiopharmaceuticalStartDateTime
0018,1072  X       C  RadiopharmaceuticalStartTime
0018,1079  X       C  RadiopharmaceuticalStopDateTime
0018,1073  X       C  RadiopharmaceuticalStopTime
0032,1030  X       -  ReasonForStudy
0040,2001  X       -  ReasonForTheImagingServiceRequest
0040,A13A  D       C  ReferencedDateTime
0400,0402  X       -  ReferencedDigitalSignatureSequence
3006,0024  U       -  ReferencedFrameOfReferenceUID
0040,4023  U       -  ReferencedGeneralPurposeScheduledProcedureStepTransactionUID
0008,1140  X/Z/U*  -  ReferencedImageSequence
0038,0004  X       -  ReferencedPatientAliasSequence
0010,1100  X       -  ReferencedPatientPhotoSequence
0008,1120  X       -  ReferencedPatientSequence
0008,1111  X/Z/D   -  ReferencedPerformedProcedureStepSequence
0400,0403  X       -  ReferencedSOPInstanceMACSequence
0008,1155  U       -  ReferencedSOPInstanceUID
0004,1511  U       -  ReferencedSOPInstanceUIDInFile
0008,1110  X/Z     -  ReferencedStudySequence
0008,0092  X       -  ReferringPhysicianAddress
0008,0096  X       -  ReferringPhysicianIdentificationSequence
0008,0090  Z       -  ReferringPhysicianName
0008,0094  X       -  ReferringPhysicianTelephoneNumbers
0010,2152  X       -  RegionOfResidence
3006,00C2  U       -  RelatedFrameOfReferenceUID
0040,0275  X       -  RequestAttributesSequence
0032,1070  X       -  RequestedContrastAgent
0040,1400  X       -  RequestedProcedureComments
0032,1060  X/Z     -  RequestedProcedureDescription
0040,1001  X       -  RequestedProcedureID
0040,1005  X       -  RequestedProcedureLocation
0000,1001  U       -  RequestedSOPInstanceUID
0032,1032  X       -  RequestingPhysician
0032,1033  X       -  RequestingService
0018,9185  X       -  RespiratoryMotionCompensationTechniqueDescription
0010,2299  X       -  ResponsibleOrganization
0010,2297  X       -  ResponsiblePerson
4008,4000  X       -  ResultsComments
4008,0118  X       -  ResultsDistributionListSequence
4008,0042  X       -  ResultsIDIssuer
300E,0004  Z       C  ReviewDate
300E,0008  X/Z     -  ReviewerName
300E,0005  Z       C  ReviewTime
300A,0006  X/Z     C  RTPlanDate
300A,0007  X/Z     C  RTPlanTime
3010,003B  U       -  RTTreatmentPhaseUID
3008,0162  X       C  SafePositionExitDate
3008,0164  X       C  SafePositionExitTime
3008,0166  X       C  SafePositionReturnDate
3008,0168  X       C  SafePositionReturnTime
0038,001A  X       C  ScheduledAdmissionDate
0038,001B  X       C  ScheduledAdmissionTime
0038,001C  X       C  ScheduledDischargeDate
0038,001D  X       C  ScheduledDischargeTime
0040,4034  X       -  ScheduledHumanPerformersSequence
0038,001E  X       -  ScheduledPatientInstitutionResidence
0040,000B  X       -  ScheduledPerformingPhysicianIdentificationSequence
0040,0006  X       -  ScheduledPerformingPhysicianName
0040,0007  X       -  ScheduledProcedureStepDescription
0040,0009  X       -  ScheduledProcedureStepID
0040,0004  X       C  ScheduledProcedureStepEndDate
0040,0005  X       C  ScheduledProcedureStepEndTime
0040,0011  X       -  ScheduledProcedureStepLocation
0040,0002  X       C  ScheduledProcedureStepStartDate
0040,0003  X       C  ScheduledProcedureStepStartTime
0040,0001  X       -  ScheduledStationAETitle
0040,4027  X       -  ScheduledStationGeographicLocationCodeSequence
0040,0010  X       -  ScheduledStationName
0040,4025  X       -  ScheduledStationNameCodeSequence
0032,1020  X       -  ScheduledStudyLocation
0032,1021  X       -  ScheduledStudyLocationAETitle
0032,1000  X       C  ScheduledStudyStartDate
0032,1001  X       C  ScheduledStudyStartTime
0032,1010  X       C  ScheduledStudyStopDate
0032,1011  X       C  ScheduledStudyStopTime
0018,1016  X       -  SecondaryCaptureDeviceManufacturer
0018,1018  X       -  SecondaryCaptureDeviceManufacturerModelName
0018,1019  X       -  SecondaryCaptureDeviceSoftwareVersions
0008,0021  X/D     C  SeriesDate
0008,103E  X       -  SeriesDescription
0020,000E  U       -  SeriesInstanceUID
0008,0031  X/D     C  SeriesTime
0038,0062  X       -  ServiceEpisodeDescription
0038,0060  X       -  ServiceEpisodeID
0040,06FA  X       -  SlideIdentifier
0010,21A0  X       -  SmokingStatus
0100,0420  X       C  SOPAuthorizationDateTime
0008,0018  U       -  SOPInstanceUID
3010,0015  U       -  SourceConceptualVolumeUID
0008,2112  X/Z/U*  -  SourceImageSequence
0400,0564  X       -  SourceOfPreviousValues
300A,022C  X       C  SourceStrengthReferenceDate
300A,022E  X       C  SourceStrengthReferenceTime
0038,0050  X       -  SpecialNeeds
0040,050A  X       -  SpecimenAccessionNumber
0040,0602  X       -  SpecimenDetailedDescription
0040,0551  Z       -  SpecimenIdentifier
0040,0610  Z       -  SpecimenPreparationSequence
0040,0600  X       -  SpecimenShortDescription
0040,0554  U       -  SpecimenUID
0018,9516  X       C  StartAcquisitionDateTime
0008,1010  X/Z/D   -  StationName
0088,0140  U       -  StorageMediaFileSetUID
3006,0008  Z       C  StructureSetDate
3006,0009  Z       C  StructureSetTime
0032,1040  X       C  StudyArrivalDate
0032,1041  X       C  StudyArrivalTime
0032,4000  X       -  StudyComments
0032,1050  X       C  StudyCompletionDate
0032,1051  X       C  StudyCompletionTime
0008,0020  Z       C  StudyDate
0008,1030  X       -  StudyDescription
0020,0010  Z       -  StudyID
0032,0012  X       -  StudyIDIssuer
0020,000D  U       -  StudyInstanceUID
0032,0034  X       C  StudyReadDate
0032,0035  X       C  StudyReadTime
0008,0030  Z       C  StudyTime
0032,0032  X       C  StudyVerifiedDate
0032,0033  X       C  StudyVerifiedTime
0020,0200  U       -  SynchronizationFrameOfReferenceUID
0018,2042  U       -  TargetUID
0040,DB0D  U       -  TemplateExtensionCreatorUID
0040,DB0C  U       -  TemplateExtensionOrganizationUID
4000,4000  X       -  TextComments
2030,0020  X       -  TextString
0040,A122  D       C  Time
0040,A112  X       C  TimeOfDocumentCreationOrVerbalTransactionTrial
0018,1201  X       C  TimeOfLastCalibration
0018,1014  X       C  TimeOfSecondaryCapture
0008,0201  X       -  TimezoneOffsetFromUTC
0088,0910  X       -  TopicAuthor
0088,0912  X       -  TopicKeywords
0088,0906  X       -  TopicSubject
0088,0904  X       -  TopicTitle
0062,0021  U       -  TrackingUID
0008,1195  U       -  TransactionUID
3008,0024  X       C  TreatmentControlPointDate
3008,0025  X       C  TreatmentControlPointTime
3008,0250  X       C  TreatmentDate
3008,0251  X       C  TreatmentTime
300A,0736  X       C  TreatmentToleranceViolationDateTime
0018,100A  X       -  UDISequence
0040,A124  U       -  UID
0018,1009  X       -  UniqueDeviceIdentifier
0040,A030  D       C  VerificationDateTime
0040,A088  Z       -  VerifyingObserverIdentificationCodeSequence
0040,A075  D       -  VerifyingObserverName
0040,A073  D       -  VerifyingObserverSequence
0040,A027  X       -  VerifyingOrganization
0038,4000  X       -  VisitComments
0018,9367  X       -  XRaySourceID
"""


def parse_table(text: str = _ROWS) -> dict[int, Rule]:
    """Parse the rows above into ``{tag: Rule}``."""
    table: dict[int, Rule] = {}
    for line in text.strip().splitlines():
        tag, basic, option, keyword = line.split()
        table[int(tag.replace(",", ""), 16)] = Rule(
            int(tag.replace(",", ""), 16), keyword, basic, option
        )
    return table


TABLE_E1_1: dict[int, Rule] = parse_table()

# Safe private attributes kept with --keep-private-safe: (group, private creator, element
# offset within the block). A subset of PS3.15 Table E.3.10-1: acquisition parameters
# (diffusion b-values and directions, mosaic layout, header types) that identify no one.
SAFE_PRIVATE: frozenset[tuple[int, str, int]] = frozenset(
    {
        (0x0019, "SIEMENS MR HEADER", 0x0A),  # number of images in mosaic
        (0x0019, "SIEMENS MR HEADER", 0x0B),  # slice measurement duration
        (0x0019, "SIEMENS MR HEADER", 0x0C),  # b value
        (0x0019, "SIEMENS MR HEADER", 0x0D),  # diffusion directionality
        (0x0019, "SIEMENS MR HEADER", 0x0E),  # diffusion gradient direction
        (0x0019, "SIEMENS MR HEADER", 0x0F),  # gradient mode
        (0x0019, "SIEMENS MR HEADER", 0x27),  # b matrix
        (0x0019, "SIEMENS MR HEADER", 0x28),  # bandwidth per pixel phase encode
        (0x0029, "SIEMENS CSA HEADER", 0x08),  # CSA image header type
        (0x0029, "SIEMENS CSA HEADER", 0x09),  # CSA image header version
        (0x0029, "SIEMENS CSA HEADER", 0x18),  # CSA series header type
        (0x0029, "SIEMENS CSA HEADER", 0x19),  # CSA series header version
        (0x0043, "GEMS_PARM_01", 0x39),  # slop integers 6-9 (b value)
        (0x2001, "Philips Imaging DD 001", 0x03),  # diffusion b factor
        (0x2001, "Philips Imaging DD 001", 0x04),  # diffusion direction
        (0x2005, "Philips MR Imaging DD 001", 0xB0),  # diffusion direction RL
        (0x2005, "Philips MR Imaging DD 001", 0xB1),  # diffusion direction AP
        (0x2005, "Philips MR Imaging DD 001", 0xB2),  # diffusion direction FH
    }
)
