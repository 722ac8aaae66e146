// Jackson (Debian libjackson2-databind-java): readValue failures; print the first line of getOriginalMessage() and getMessage()
import com.fasterxml.jackson.databind.*;
import com.fasterxml.jackson.core.JsonProcessingException;
public class Jack {
  public static class T { public int x; }
  public static void main(String[] a) throws Exception {
    ObjectMapper m = new ObjectMapper();
    String ver = com.fasterxml.jackson.databind.cfg.PackageVersion.VERSION.toString();
    String[][] cases = {{"{\"x\":1,}", "trailing comma"}, {"{x:1}", "unquoted key"}, {"{\"x\":\"abc\"}", "string for int"}, {"{\"x\":1,\"y\":2}", "unknown property y"}, {"{\"x\":", "truncated"}};
    for (String[] c : cases) {
      try { m.readValue(c[0], T.class); } catch (JsonProcessingException e) {
        String first = e.getMessage().split("\n")[0];
        System.out.println("Jackson\t" + ver + "\ttransform\t" + first + "\tran jackson-databind@" + ver + " (ObjectMapper.readValue " + c[1] + " " + c[0] + "; " + e.getClass().getSimpleName() + ", first line of getMessage(); Debian libjackson2-databind-java, OpenJDK " + System.getProperty("java.version") + ")");
      }
    }
  }
}
