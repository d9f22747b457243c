"""ctriage common library: configuration, database, storage, queue contracts and DICOM I/O."""
