// protoc-gen-courier: the protoc plugin. All the work is in CourierCodeGen.
//
//   protoc --plugin=protoc-gen-courier=.build/debug/protoc-gen-courier \
//          --courier_out=Sources/MyService --courier_opt=Visibility=Public my_service.proto
import CourierCodeGen
import SwiftProtobufPluginLibrary

CourierCodeGenerator().main(nil)
