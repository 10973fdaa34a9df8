use vigil_tests::*;
