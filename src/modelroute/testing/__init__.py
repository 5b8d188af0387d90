"""Testing aids shipped with modelroute: fake providers that are real HTTP servers on 127.0.0.1
speaking the providers' wire formats, for the tests, the demo and the benchmarks."""
